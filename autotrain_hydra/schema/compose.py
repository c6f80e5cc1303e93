"""Compose a config without running the app (tests, the pre-check, notebooks)."""

from __future__ import annotations

from typing import Iterable, Optional

from omegaconf import DictConfig

from autotrain_hydra import paths
from autotrain_hydra.schema import register


def compose_config(overrides: Iterable[str] = (), config_dir: Optional[str] = None) -> DictConfig:
    """The composed config for these overrides, as ``python -m autotrain_hydra <overrides>`` would see it."""
    global _initialized_for
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    register()
    wanted = str(config_dir or paths.config_dir())
    if _initialized_for != wanted or not GlobalHydra.instance().is_initialized():
        from hydra_plugins.autotrain_hydra_sweeper import register_config

        GlobalHydra.instance().clear()
        initialize_config_dir(wanted, version_base="1.3")  # stays initialized: later calls compose at once
        register_config()  # hydra/sweeper=optuna is our sweeper (after Hydra's plugin scan registered the plugin's)
        _initialized_for = wanted
    return compose("config", overrides=list(overrides))


_initialized_for: Optional[str] = None
