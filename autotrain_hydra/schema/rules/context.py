"""What every rule gets: the config, the report to add to, the trainer, and what the user typed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, List

from omegaconf import DictConfig

from autotrain_hydra.schema.errors import Report
from autotrain_hydra.schema.keys import feature_enabled, get, is_set, override_keys


@dataclass
class Context:
    cfg: DictConfig
    report: Report
    trainer: Any
    typed: List[str]  # the overrides as typed
    overridden: set  # the keys they set

    @classmethod
    def of(cls, cfg: DictConfig, overrides: Iterable[str]) -> "Context":
        typed = list(overrides)
        return cls(cfg, Report(), get(cfg, "trainer.name"), typed, override_keys(typed))

    def get(self, key: str) -> Any:
        return get(self.cfg, key)

    def is_set(self, key: str) -> bool:
        return is_set(self.cfg, key, self.overridden)

    def enabled(self, feature: str) -> bool:
        return feature_enabled(self.cfg, feature)
