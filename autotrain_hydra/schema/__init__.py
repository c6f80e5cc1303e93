"""Config schema, rules and errors. Light: importing this registers the schema with Hydra's ConfigStore."""

from __future__ import annotations

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
    "Config", "DataConfig", "DistillationConfig", "EvalConfig", "LauncherConfig", "ModelConfig", "PeftConfig", "RLConfig",
    "SweepConfig", "TrainerConfig", "TrainingConfig", "ConfigError", "Issue", "register",
]

_REGISTERED = False


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
    _REGISTERED = True


register()
