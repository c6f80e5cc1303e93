"""Where the shipped configs, assets and caches live (works from a checkout, an editable and a wheel install)."""

from __future__ import annotations

import os
from pathlib import Path

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
