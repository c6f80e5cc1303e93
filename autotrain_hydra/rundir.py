"""One owner per run dir, a manifest that says whose dir it is, and results that appear all together or not at all.

- **The lock** (``.autotrain_hydra.lock``): an exclusive ``flock`` held by the process that runs the job, for the
  whole job. The kernel releases it when the process ends, however it ends (a ``kill -9`` leaves no stale lock). A
  second run into the same dir is refused at once, naming the holder (pid, host, start time, command).
- **The manifest** (``run.json``): the run's id, trainer, model, data, the fingerprint of every key that shapes
  training (``schema.fingerprint``), its status (``running``, ``complete``, ``failed``) and, once complete, the
  checkpoints that belong to it. Each checkpoint is stamped with the run id and fingerprint (``paths.STAMP``), so a
  resume takes only this run's checkpoints and lists any key that changed.
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
import os
import shutil
import socket
import sys
import uuid
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterator, List, Optional

from autotrain_hydra import secrets
from autotrain_hydra.errors import InputError
from autotrain_hydra.paths import checkpoint_complete, written_whole

LOCK = ".autotrain_hydra.lock"
MANIFEST = "run.json"
STAGING = ".staging"
JOURNAL = ".commit.json"
ASIDE = ".overwritten-"
OLD_SAVING = ".saving-"  # the temporary folders of earlier versions: removed by recover
BOOKKEEPING = {LOCK, STAGING, JOURNAL}  # ours: not the results of a run


class DirInUse(InputError):
    """Another process holds the run dir's lock."""


def now() -> str:
    return datetime.datetime.now().isoformat(timespec="seconds")


def holder(out: str) -> Optional[str]:
    """Who holds ``out``'s lock (pid, host, start, command), or None when nobody does."""
    path = os.path.join(out, LOCK)
    if not os.path.isfile(path):
        return None
    import fcntl

    with open(path, "a+", encoding="utf-8") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            f.seek(0)
            return f.read().strip() or "another process"
        fcntl.flock(f, fcntl.LOCK_UN)
    return None


@contextlib.contextmanager
def owned(out: str, key: str = "output_dir") -> Iterator[None]:
    """Hold ``out``'s lock for the block; a dir another process holds is refused (exit 2) naming the holder."""
    import fcntl

    os.makedirs(out, exist_ok=True)
    fd = os.open(os.path.join(out, LOCK), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise
            who = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip() or "another process"
            raise DirInUse(f"{key} {out} is in use by another run ({who}): two runs never write into one dir.\n"
                           f"    fix: wait for that run to end, or choose another {key}") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, secrets.redact(f"pid {os.getpid()} on {socket.gethostname()}, started {now()}: "
                                     f"{' '.join(sys.argv)[:300]}\n").encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock; the file stays (removing it would race with the next owner)


# ------------------------------------------------------------------------------------------------ the manifest
@dataclass
class Manifest:
    run_id: str
    trainer: str
    model: str
    data: str
    fingerprint: Dict[str, Any]
    status: str = "running"
    started: str = ""
    finished: Optional[str] = None
    error: Optional[str] = None
    checkpoints: Optional[List[str]] = None

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


def start(out: str, trainer: str, model: str, data: str, fingerprint: Dict[str, Any], resuming: bool) -> Manifest:
    """The manifest of the run starting in ``out`` (under its lock): a resume continues the dir's run (its id),
    anything else is a new run."""
    earlier = read_manifest(out) if resuming else None
    if earlier is not None:  # left as it is until this run commits (a resume refused at once changes nothing)
        return earlier
    manifest = Manifest(run_id=uuid.uuid4().hex[:12], trainer=trainer, model=model, data=data,
                        fingerprint=fingerprint, started=now())
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


def abandon(out: str) -> None:
    """A run refused before it trained (an input error found while loading) in a dir it made: its bookkeeping is
    removed, and the dir too when nothing else is in it (the dir is as before the run)."""
    for name in (MANIFEST, STAGING, "checkpoints", LOCK):
        path = os.path.join(out, name)
        if name == "checkpoints" and os.path.isdir(path) and os.listdir(path):
            continue
        with contextlib.suppress(OSError):
            _remove(path)
    with contextlib.suppress(OSError):
        os.rmdir(out)  # only when empty


def stamp(out: str, trainer: str, model: str) -> Dict[str, Any]:
    """What a checkpoint of the run in ``out`` records about the run that wrote it."""
    manifest = read_manifest(out)
    found: Dict[str, Any] = {"trainer": trainer, "model": model}
    if manifest is not None:
        found.update(run_id=manifest.run_id, fingerprint=manifest.fingerprint)
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
        path = os.path.join(checkpoints, name)
        if name.startswith(OLD_SAVING) or (name.startswith("checkpoint-") and not checkpoint_complete(path)):
            shutil.rmtree(path, ignore_errors=True)
            say(f"{path}: removed, a checkpoint the earlier run did not finish writing")
    for name in os.listdir(out):
        if name == STAGING or name.startswith(OLD_SAVING):
            shutil.rmtree(os.path.join(out, name), ignore_errors=True)
            say(f"{out}: removed {name}/, a save the earlier run did not finish")
        elif _is_temporary(name):  # a file written whole (paths.written_whole) by a process killed meanwhile
            with contextlib.suppress(OSError):
                os.remove(os.path.join(out, name))
    return finished


def complete(out: str) -> bool:
    """``out`` holds a run's complete results: its manifest says so, and no commit is pending."""
    manifest = read_manifest(out)
    return manifest is not None and manifest.status == "complete" and not os.path.exists(os.path.join(out, JOURNAL))


def _is_temporary(name: str) -> bool:
    parts = name.rsplit(".", 2)
    return len(parts) == 3 and parts[2] == "tmp" and parts[1].isdigit()


def set_aside(out: str, keep: Callable[[str], bool]) -> Optional[str]:
    """``overwrite_output_dir=true``: move the earlier run's files (those ``keep`` does not keep) into
    ``.overwritten-<time>/``; they are removed when this run's results are committed. Returns that folder."""
    names = [n for n in os.listdir(out) if n not in BOOKKEEPING and not n.startswith(ASIDE) and not keep(n)]
    if not names:
        return None
    aside = os.path.join(out, f"{ASIDE}{datetime.datetime.now():%Y%m%d-%H%M%S}-{os.getpid()}")
    os.makedirs(aside)
    for name in names:
        os.replace(os.path.join(out, name), os.path.join(aside, name))
    return aside
