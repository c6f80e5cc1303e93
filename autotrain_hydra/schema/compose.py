"""Compose a config without running the app (tests, the pre-check, notebooks)."""

from __future__ import annotations

from typing import Iterable, Optional

from omegaconf import DictConfig

from autotrain_hydra import paths
from autotrain_hydra.schema import register


def compose_config(overrides: Iterable[str] = (), config_dir: Optional[str] = None) -> DictConfig:
    """The composed config for these overrides, as ``python -m autotrain_hydra <overrides>`` would see it."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    register()
    if GlobalHydra.instance().is_initialized():
        GlobalHydra.instance().clear()
    with initialize_config_dir(str(config_dir or paths.config_dir()), version_base="1.3"):
        return compose("config", overrides=list(overrides))
