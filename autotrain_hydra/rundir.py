"""One owner per run dir, a manifest that says whose dir it is, and results that appear all together or not at all.

- **The lock** (``.autotrain_hydra.lock``): an exclusive ``flock`` held by the process that runs the job, for the
  whole job. The kernel releases it when the process ends, however it ends (a ``kill -9`` leaves no stale lock). A
  second run into the same dir is refused at once, naming the holder (pid, host, start time, command).
- **The manifest** (``run.json``): the run's id, trainer, model, data, the recipe: every key that shapes
  training (``schema.recipe``), its status (``running``, ``complete``, ``failed``) and, once its results are
  written, the step they are from and the checkpoints that belong to it. Each checkpoint is stamped with the run id
  and recipe (``paths.STAMP``), so a resume takes only this run's checkpoints and lists any key that changed.
- **The results** (model, tokenizer, metrics.json, config.yaml, model card, plots, predictions, the manifest marked
  complete) are written into ``.staging/`` and committed together: a journal naming them is written whole
  (``.commit.json``), then each is moved into place and the journal removed. A kill before the journal leaves the
  dir as it was (the next run in the dir removes the staging folder); a kill after it is finished by the next run
  (``recover``): the dir is never left with a mix of two runs' files, and no temporary folder outlives the next run.
- **Overwrite** (``overwrite_output_dir=true``): the earlier run's files are moved to ``.overwritten-<time>/``
  before anything is written, and removed when the new run's results are committed.

Standard library only (the facts layer): no torch.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import json
import logging
import os
import time
import shutil
import socket
import sys
import uuid
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterator, List, Optional

from autotrain_hydra import secrets
from autotrain_hydra.errors import InputError
from autotrain_hydra.paths import checkpoint_state, is_temporary, last_complete_checkpoint, written_whole

LOCK = ".autotrain_hydra.lock"
MANIFEST = "run.json"
STAGING = ".staging"
JOURNAL = ".commit.json"
ASIDE = ".overwritten-"
SAVING = ".saving-"  # a checkpoint folder being written (PPO) and the final-save folders of earlier versions
BOOKKEEPING = {LOCK, STAGING, JOURNAL}  # ours: not the results of a run


log = logging.getLogger("autotrain_hydra")
_HELD: set = set()  # the dirs this process holds: owned() is re-entrant (the entry point locks before Hydra writes)
HELD = (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK)  # flock's answers for a lock another process holds
NO_LOCKS = (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL)  # a filesystem without flock


class DirInUse(InputError):
    """Another process holds the run dir's lock."""


def now() -> str:
    return datetime.datetime.now().isoformat(timespec="seconds")


def holder(out: str) -> Optional[str]:
    """Who holds ``out``'s lock (pid, host, start, command), or None when nobody does."""
    path = os.path.join(out, LOCK)
    if not os.path.isfile(path) or os.path.realpath(out) in _HELD:  # nobody, or this process
        return None
    import fcntl

    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except OSError as e:
                if e.errno not in HELD:  # no locks on this filesystem: nobody can be said to hold it
                    return None
                return f.read().strip() or "another process"
            fcntl.flock(f, fcntl.LOCK_UN)
    except OSError:  # not readable: the run that owns it will say
        return None
    return None


@contextlib.contextmanager
def owned(out: str, key: str = "output_dir") -> Iterator[None]:
    """Hold ``out``'s lock for the block; a dir another process holds is refused (exit 2) naming the holder. On a
    filesystem without ``flock`` (some Lustre and NFS mounts) the run goes on unlocked, saying so."""
    import fcntl

    os.makedirs(out, exist_ok=True)
    real = os.path.realpath(out)
    if real in _HELD:
        yield
        return
    fd = os.open(os.path.join(out, LOCK), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        for attempt in range(20):  # a holder() probe holds a shared lock for an instant
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as e:
                if e.errno in NO_LOCKS:
                    log.warning("%s: this filesystem has no file locks (%s): two runs into this dir at once would not "
                                "be refused", out, os.strerror(e.errno))
                    break
                if e.errno not in HELD:
                    raise
                if attempt == 19:
                    who = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip() or "another process"
                    raise DirInUse(f"{key} {out} is in use by another run ({who}): two runs never write into one "
                                   f"dir.\n    fix: wait for that run to end, or choose another {key}") from None
                time.sleep(0.05)
        _HELD.add(real)
        os.ftruncate(fd, 0)
        os.pwrite(fd, secrets.redact(f"pid {os.getpid()} on {socket.gethostname()}, started {now()}: "
                                     f"{' '.join(sys.argv)[:300]}\n").encode(), 0)
        yield
    finally:
        _HELD.discard(real)
        if not os.path.exists(os.path.join(out, MANIFEST)):  # refused before the run started: leave no trace
            with contextlib.suppress(OSError):
                os.remove(os.path.join(out, LOCK))
        os.close(fd)  # releases the lock; the file of a run that started stays (removing it would race)


# ------------------------------------------------------------------------------------------------ the manifest
@dataclass
class Manifest:
    run_id: str
    trainer: str
    model: str
    data: str
    recipe: Dict[str, Any]
    status: str = "running"
    started: str = ""
    finished: Optional[str] = None
    error: Optional[str] = None
    step: Optional[int] = None  # the optimizer step the written results are from
    checkpoints: Optional[List[str]] = None
    pruned_at_step: Optional[int] = None  # a sweep trial its pruner stopped: its results are to this step

    def as_dict(self) -> Dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


def read_manifest(out: str) -> Optional[Manifest]:
    """The manifest of ``out`` (None when there is none, or it cannot be read)."""
    try:
        with open(os.path.join(out, MANIFEST), encoding="utf-8") as f:
            data = json.load(f)
        return Manifest(**{k: data[k] for k in Manifest.__dataclass_fields__ if k in data})
    except (OSError, ValueError, TypeError, KeyError):
        return None


def write_manifest(folder: str, manifest: Manifest) -> None:
    """Written whole, secrets redacted (an error message may quote a value from the environment)."""
    with written_whole(os.path.join(folder, MANIFEST)) as tmp, open(tmp, "w", encoding="utf-8") as f:
        json.dump(secrets.redact_obj(manifest.as_dict()), f, indent=2, default=str)


def start(out: str, trainer: str, model: str, data: str, recipe: Dict[str, Any], resuming: bool) -> Manifest:
    """The manifest of the run starting in ``out`` (under its lock): a resume of the dir's own run continues it (its
    id; the manifest is left as it is until the run writes its results), anything else is a new run."""
    earlier = read_manifest(out) if resuming else None
    if earlier is not None:
        if last_complete_checkpoint(os.path.join(out, "checkpoints"), run_id=earlier.run_id) is not None:
            return earlier  # left as it is until this run commits (a resume refused at once changes nothing)
        # no checkpoint of the run: it starts again from the beginning, with this config's recipe
        earlier.trainer, earlier.model, earlier.data, earlier.recipe = trainer, model, data, recipe
        write_manifest(out, earlier)
        return earlier
    manifest = Manifest(run_id=uuid.uuid4().hex[:12], trainer=trainer, model=model, data=data, recipe=recipe,
                        started=now())
    write_manifest(out, manifest)
    return manifest


def failed(out: str, error: str) -> None:
    """Mark the dir's run failed (best effort: the run is failing already)."""
    manifest = read_manifest(out)
    if manifest is None or manifest.status == "complete":
        return
    manifest.status, manifest.error, manifest.finished = "failed", error[:2000], now()
    with contextlib.suppress(OSError):
        write_manifest(out, manifest)


def produced_nothing(out: str) -> bool:
    """No model staged and no checkpoint written: the run was refused before it trained."""
    checkpoints = os.path.join(out, "checkpoints")
    return not os.path.exists(staging(out)) and not (os.path.isdir(checkpoints) and os.listdir(checkpoints))


def abandon(out: str) -> None:
    """A run refused before it trained (an input error found while loading, ``produced_nothing``) in a dir it
    made: its manifest and lock are removed, and the dir too when nothing else is in it (as before the run). The
    lock file is removed while held: the process is about to end, and a new run makes a new one."""
    for name in (MANIFEST, "checkpoints", LOCK):
        with contextlib.suppress(OSError):
            _remove(os.path.join(out, name)) if name != "checkpoints" else os.rmdir(os.path.join(out, name))
    with contextlib.suppress(OSError):
        os.rmdir(out)  # only when empty


def stamp(out: str, trainer: str, model: str) -> Dict[str, Any]:
    """What a checkpoint of the run in ``out`` records about the run that wrote it."""
    manifest = read_manifest(out)
    found: Dict[str, Any] = {"trainer": trainer, "model": model}
    if manifest is not None:
        found.update(run_id=manifest.run_id, recipe=manifest.recipe)
    return found


# ----------------------------------------------------------------------------------------------------- results
def staging(out: str) -> str:
    return os.path.join(out, STAGING)


def fresh_staging(out: str) -> str:
    """An empty staging folder (a leftover one is an unfinished save: removed)."""
    path = staging(out)
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    return path


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.remove(path)


def _finish(out: str, names: List[str]) -> None:
    stage = staging(out)
    for name in names:
        source = os.path.join(stage, name)
        if os.path.lexists(source):  # not moved yet
            target = os.path.join(out, name)
            _remove(target)
            os.replace(source, target)
    shutil.rmtree(stage, ignore_errors=True)
    os.remove(os.path.join(out, JOURNAL))


def commit(out: str) -> List[str]:
    """Move everything staged into ``out``, all together (see the module's doc); returns the names moved."""
    names = sorted(os.listdir(staging(out)), key=lambda n: (n == MANIFEST, n))  # the manifest, "complete", last
    with written_whole(os.path.join(out, JOURNAL)) as tmp, open(tmp, "w", encoding="utf-8") as f:
        json.dump({"names": names}, f)
    _finish(out, names)
    for name in os.listdir(out):  # the earlier run's results, kept aside until now
        if name.startswith(ASIDE):
            shutil.rmtree(os.path.join(out, name), ignore_errors=True)
    return names


def recover(out: str, say: Callable[[str], None]) -> bool:
    """Under the lock, before a run writes anything: finish a commit a kill cut short (returns True), remove an
    unfinished save, incomplete checkpoints and temporary files."""
    finished = False
    journal = os.path.join(out, JOURNAL)
    if os.path.isfile(journal):
        try:
            with open(journal, encoding="utf-8") as f:
                names = list(json.load(f)["names"])
        except (OSError, ValueError, KeyError, TypeError):
            names = None
        if names is not None:
            _finish(out, names)
            finished = True
            say(f"{out}: the results of the earlier run were being moved into place when it was stopped: finished")
        else:  # written whole, so unreadable only if damaged by hand: the staged results are not trusted
            os.remove(journal)
    checkpoints = os.path.join(out, "checkpoints")
    for name in os.listdir(checkpoints) if os.path.isdir(checkpoints) else []:
        path = os.path.join(checkpoints, name)  # trainer_state.json is written last: without it, a checkpoint cut short
        if name.startswith(SAVING) or (name.startswith("checkpoint-") and checkpoint_state(path) is None):
            shutil.rmtree(path, ignore_errors=True)
            say(f"{path}: removed, a checkpoint the earlier run did not finish writing")
        elif os.path.isdir(path):  # a stamp (paths.stamp_checkpoint) cut short by a kill leaves its temporary
            for inner in os.listdir(path):
                if is_temporary(inner):
                    with contextlib.suppress(OSError):
                        os.remove(os.path.join(path, inner))
                    say(f"{path}: removed {inner}, a file the earlier run did not finish writing")
    done = complete(out)
    for name in os.listdir(out):
        if name.startswith(ASIDE) and done:  # an overwrite whose new results are written: the old ones go
            shutil.rmtree(os.path.join(out, name), ignore_errors=True)
        elif name == STAGING or name.startswith(SAVING):
            shutil.rmtree(os.path.join(out, name), ignore_errors=True)
            say(f"{out}: removed {name}/, a save the earlier run did not finish")
        elif is_temporary(name):  # a file written whole (paths.written_whole) by a process killed meanwhile
            with contextlib.suppress(OSError):
                os.remove(os.path.join(out, name))
    return finished


def complete(out: str) -> bool:
    """``out`` holds a run's complete results: its manifest says so, and no commit is pending."""
    manifest = read_manifest(out)
    return manifest is not None and manifest.status == "complete" and not os.path.exists(os.path.join(out, JOURNAL))


def committed_step(out: str) -> Optional[int]:
    """The optimizer step of the results written in ``out`` (None when there are none, or a commit is pending)."""
    manifest = read_manifest(out)
    written = manifest is not None and manifest.step is not None and manifest.status in ("complete", "failed")
    return manifest.step if written and not os.path.exists(os.path.join(out, JOURNAL)) else None


def _subdirs(out: str, name: str) -> List[str]:
    path = os.path.join(out, name)
    try:
        return [n for n in os.listdir(path) if os.path.isdir(os.path.join(path, n))] if os.path.isdir(path) else []
    except OSError:
        return []


def restore(out: str, aside: str) -> None:
    """Undo ``set_aside`` (the new run was refused before it trained): the earlier run's files back in place."""
    with contextlib.suppress(OSError):
        os.remove(os.path.join(out, MANIFEST))
    for name in os.listdir(aside):
        if not os.path.lexists(os.path.join(out, name)):
            os.replace(os.path.join(aside, name), os.path.join(out, name))
    shutil.rmtree(aside, ignore_errors=True)


def set_aside(out: str, keep: Callable[[str], bool]) -> Optional[str]:
    """``overwrite_output_dir=true``: move the earlier run's files (those ``keep`` does not keep) into
    ``.overwritten-<time>/``; they are removed when this run's results are committed. Returns that folder."""
    names = [n for n in os.listdir(out) if n not in BOOKKEEPING and not n.startswith(ASIDE) and not keep(n)]
    if not names:
        return None
    for name in names:  # a sweep's trial dirs (or any run dir inside): never moved while a run holds one
        for lock in (os.path.join(out, name, LOCK), *[os.path.join(out, name, n, LOCK) for n in _subdirs(out, name)]):
            who = holder(os.path.dirname(lock))
            if who:
                raise DirInUse(f"output_dir {out} holds {os.path.dirname(lock)}, in use by a running run ({who}): "
                               "overwrite_output_dir=true would move it away under that run.\n    fix: wait for it "
                               "to end, or choose another output_dir")
    aside = os.path.join(out, f"{ASIDE}{datetime.datetime.now():%Y%m%d-%H%M%S}-{os.getpid()}")
    os.makedirs(aside)
    for name in names:
        os.replace(os.path.join(out, name), os.path.join(aside, name))
    return aside
