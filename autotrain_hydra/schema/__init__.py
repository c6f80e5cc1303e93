"""Config schema, rules and errors. Light: importing this registers the schema with Hydra's ConfigStore."""

from __future__ import annotations

from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf

from autotrain_hydra import paths
from autotrain_hydra.schema.config import (
    Config,
    DataConfig,
    DistillationConfig,
    EvalConfig,
    LauncherConfig,
    ModelConfig,
    PeftConfig,
    RLConfig,
    SweepConfig,
    TrainerConfig,
    TrainingConfig,
)
from autotrain_hydra.schema.errors import ConfigError, Issue

__all__ = [
    "Config", "DataConfig", "DistillationConfig", "EvalConfig", "LauncherConfig", "ModelConfig", "PeftConfig",
    "RLConfig", "SweepConfig", "TrainerConfig", "TrainingConfig", "ConfigError", "Issue", "register",
]

_REGISTERED = False


def tiny_only(key: str, value: Any, *, _root_: Any) -> Any:
    """``${tiny_only:training.lr,1e-3}``: ``value`` when the model is the built-in tiny one, else the schema's
    default of ``key``. The tiny preset tunes training for a random-weight model; a real model named with
    ``model.name=...`` on top of it must get the guide's defaults, never the tiny model's learning rate."""
    from autotrain_hydra.schema.keys import default

    return value if OmegaConf.select(_root_, "model.name") == "tiny" else default(key)


def register() -> None:
    """Store the schema nodes (``base_*``) in Hydra's ConfigStore and register our resolvers. Idempotent."""
    global _REGISTERED
    if _REGISTERED:
        return
    cs = ConfigStore.instance()
    cs.store(name="base_config", node=Config)
    cs.store(group="trainer", name="base_trainer", node=TrainerConfig)
    cs.store(group="model", name="base_model", node=ModelConfig)
    cs.store(group="peft", name="base_peft", node=PeftConfig)
    cs.store(group="data", name="base_data", node=DataConfig)
    cs.store(group="launcher", name="base_launcher", node=LauncherConfig)
    if not OmegaConf.has_resolver("autotrain_asset"):
        OmegaConf.register_new_resolver("autotrain_asset", paths.asset)
    if not OmegaConf.has_resolver("unique_dir"):
        OmegaConf.register_new_resolver("unique_dir", paths.claim_dir, use_cache=True)
    if not OmegaConf.has_resolver("tiny_only"):
        OmegaConf.register_new_resolver("tiny_only", tiny_only)
    _REGISTERED = True


register()
