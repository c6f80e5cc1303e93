"""Where the shipped configs, assets and caches live (works from a checkout, an editable and a wheel install)."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Callable, Iterator, Optional

PACKAGE_DIR = Path(__file__).resolve().parent
ASSETS_DIR = PACKAGE_DIR / "assets"


def config_dir() -> Path:
    """The primary config directory: ``autotrain_hydra/configs`` in a wheel, ``<repo>/configs`` in a checkout."""
    for candidate in (PACKAGE_DIR / "configs", PACKAGE_DIR.parent / "configs"):
        if (candidate / "config.yaml").is_file():
            return candidate
    raise FileNotFoundError(f"autotrain_hydra: no configs/config.yaml next to {PACKAGE_DIR}; reinstall the package")


def asset(relative: str) -> str:
    """Absolute path of a shipped asset (``data/chat.jsonl`` ...)."""
    path = ASSETS_DIR / relative
    if not path.exists():
        raise FileNotFoundError(f"autotrain_hydra: no shipped asset {relative!r} in {ASSETS_DIR}")
    return str(path)


def cache_dir() -> Path:
    """Cache for built artefacts (the tiny model): ``$AUTOTRAIN_HYDRA_CACHE`` or ``~/.cache/autotrain_hydra``."""
    root = os.environ.get("AUTOTRAIN_HYDRA_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "autotrain_hydra"
    )
    return Path(root)


_DRY = False


@contextlib.contextmanager
def dry_claims() -> Iterator[None]:
    """In the block, ``claim_dir`` names the dir it would make and makes none (``--cfg ... --resolve``)."""
    global _DRY
    _DRY = True
    try:
        yield
    finally:
        _DRY = False


def claim_dir(path: str) -> str:
    """A new run dir: ``path`` if this call creates it, else the first of ``path_1``, ``path_2``, ... that it creates.

    The default run and sweep dirs (``outputs/<trainer>/<date>/<time>``) are named to the second, so runs started in
    the same second (a SLURM job array, a loop of ``&``) would share one, and Hydra would write its ``.hydra/`` files
    over the other run's before any check of ours runs. ``os.mkdir`` is atomic: each run gets a dir of its own.
    Registered as the ``unique_dir`` resolver with ``use_cache`` (as Hydra's ``now``), so a run resolves it once and
    its sweep jobs, which get a copy of the cache, resolve the same dir."""
    if _DRY:
        candidate, n = path, 0
        while os.path.exists(candidate):
            n += 1
            candidate = f"{path}_{n}"
        return candidate
    parent = os.path.dirname(path)
    if parent:
        os.makedirs(parent, exist_ok=True)
    candidate, n = path, 0
    while True:
        try:
            os.mkdir(candidate)
            return candidate
        except FileExistsError:
            n += 1
            candidate = f"{path}_{n}"


def default_storage(sweep_dir: str, launch_dir: Optional[str] = None) -> str:
    """A sweep's study storage when ``sweep.storage`` is not set: ``optuna.db`` in the sweep dir (a relative sweep
    dir is the launch dir's)."""
    return f"sqlite:///{os.path.join(launch_dir or os.getcwd(), str(sweep_dir))}/optuna.db"


def default_study_name(trainer: str) -> str:
    """A sweep's study name when ``sweep.study_name`` is not set."""
    return f"{trainer}-sweep"


def temporary_name(path: str) -> str:
    """Where ``written_whole`` writes ``path`` first: ``<path>.<pid>.tmp``."""
    return f"{path}.{os.getpid()}.tmp"


def is_temporary(name: str) -> bool:
    """A name ``temporary_name`` gives (left behind by a process killed while writing)."""
    parts = name.rsplit(".", 2)
    return len(parts) == 3 and parts[2] == "tmp" and parts[1].isdigit()


@contextlib.contextmanager
def written_whole(path: str) -> Iterator[str]:
    """A temporary path beside ``path``, moved onto it when the block ends (``os.replace``): a reader, or another
    process writing the same file on a shared disk, never sees it half-written; on an error ``path`` is unchanged."""
    tmp = temporary_name(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


# ----------------------------------------------------------------------------------------------- checkpoints
STAMP = "autotrain_hydra.json"  # in each checkpoint: the trainer and model that wrote it


def checkpoint_complete(path: str) -> bool:
    """A checkpoint folder the Trainer finished writing: its trainer_state.json (written after the model, optimizer,
    scheduler and RNG state) exists and parses. A folder cut short by a crash fails this."""
    return checkpoint_state(path) is not None and any(os.path.isfile(os.path.join(path, w)) for w in (
        "model.safetensors", "adapter_model.safetensors", "model.safetensors.index.json", "pytorch_model.bin"))


def checkpoint_state(path: str) -> Optional[dict]:
    """A checkpoint's trainer_state.json, with our stamp (``trainer``, ``model``) when it has one; None when it
    cannot be read."""
    try:
        with open(os.path.join(path, "trainer_state.json"), encoding="utf-8") as f:
            state = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(state, dict):
        return None
    try:
        with open(os.path.join(path, STAMP), encoding="utf-8") as f:
            state["stamp"] = json.load(f)
    except (OSError, ValueError):
        state["stamp"] = {}
    return state


def last_complete_checkpoint(folder: str, warn: Optional[Callable[[str], None]] = None,
                             run_id: Optional[str] = None) -> Optional[str]:
    """The newest complete ``checkpoint-N`` of ``folder`` (incomplete ones skipped, each said to ``warn``); with
    ``run_id``, only a checkpoint of that run (one stamped by another run is skipped, and said)."""
    if not os.path.isdir(folder):
        return None
    steps = []
    for name in os.listdir(folder):
        if name.startswith("checkpoint-") and name[len("checkpoint-"):].isdigit():
            steps.append((int(name[len("checkpoint-"):]), os.path.join(folder, name)))
    for _, path in sorted(steps, reverse=True):
        if not checkpoint_complete(path):
            if warn is not None:
                warn(f"checkpoint {path} is incomplete (cut short by a crash?): skipped")
            continue
        wrote = (checkpoint_state(path) or {}).get("stamp", {}).get("run_id")
        if run_id is not None and wrote != run_id:  # unstamped: a kill between the checkpoint and its stamp
            if warn is not None:
                warn(f"checkpoint {path} was written by another run ({wrote or 'no stamp'}, not {run_id}): skipped")
            continue
        return path
    return None


def stamp_checkpoint(path: str, stamp: dict) -> None:
    """Say in a checkpoint which run, trainer and model wrote it, and the run's fingerprint (``rundir.stamp``): a
    resume with another trainer, model or recipe is refused, and a resume takes only its own run's checkpoints."""
    from autotrain_hydra.secrets import redact_obj

    with written_whole(os.path.join(path, STAMP)) as tmp, open(tmp, "w", encoding="utf-8") as f:
        json.dump(redact_obj(stamp), f)
