"""What a run of a config reports: the metrics.json names (what ``sweep.metric`` may name), the enhanced-evaluation
metrics it computes, and the sweep's objective (metric and direction) when the user left them unset.

All of it read from the trainer registry; light module.
"""

from __future__ import annotations

import json
from typing import Any, List, Optional, Set, Tuple

from omegaconf import DictConfig, ListConfig, OmegaConf

from autotrain_hydra import registry
from autotrain_hydra.schema.keys import get


def normalize_metrics(value: Any) -> Any:
    """``eval.metrics`` as a list: a list, or the guide's JSON string (``'["bleu", "rouge"]'``), or one name."""
    if isinstance(value, ListConfig):
        value = OmegaConf.to_container(value)
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            value = json.loads(text)
        else:
            value = [v.strip() for v in text.split(",") if v.strip()]
    return value


def eval_metrics(cfg: DictConfig) -> List[str]:
    """The metrics enhanced evaluation computes: ``eval.metrics``, or the trainer's default."""
    metrics = normalize_metrics(get(cfg, "eval.metrics"))
    if metrics is None:
        return list(registry.spec(get(cfg, "trainer.name")).default_eval_metrics)
    return metrics


def benchmark_entries(value: Any) -> List[str]:
    """``eval.benchmark`` as a list: a list, or a comma-separated string."""
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else [str(v) for v in value]
    return [e.strip() for e in items if e.strip()]


def has_eval_data(cfg: DictConfig) -> bool:
    return bool(get(cfg, "data.valid_path") or get(cfg, "data.valid_split") or get(cfg, "data.valid_fraction"))


def enhanced_eval_names(cfg: DictConfig) -> Set[str]:
    """``eval/<name>`` keys that features=[eval] adds to metrics.json."""
    if not get(cfg, "eval.enabled"):
        return set()
    try:
        metrics = eval_metrics(cfg)
    except ValueError:
        return set()
    if not isinstance(metrics, list):
        return set()
    return {k for m in metrics for k in registry.eval_metric_keys(str(m))}


def reported_metrics(cfg: DictConfig) -> Set[str]:
    """The metric names a run of this config writes to metrics.json (what ``sweep.metric`` may name)."""
    spec = registry.spec(get(cfg, "trainer.name"))
    return set(spec.reported_metrics(has_eval_data(cfg))) | enhanced_eval_names(cfg)


def sweep_objective(cfg: DictConfig) -> Tuple[str, Optional[str]]:
    """(metric, direction) of a sweep: ``sweep.metric`` (null: the trainer's sweep metric) and ``sweep.direction``
    (null: the direction the metric's name implies, None when it implies none)."""
    metric = get(cfg, "sweep.metric") or registry.spec(get(cfg, "trainer.name")).sweep_metric
    direction = get(cfg, "sweep.direction") or registry.metric_direction(metric)
    return metric, direction
