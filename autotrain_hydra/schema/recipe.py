"""The recipe of a run: every key its trainer reads that shapes the training a checkpoint continues.

Written into the run's manifest and each of its checkpoints (``rundir``); a resume compares it with the config it
is given (``rules/resume.py``). Each key is kept as a digest of its value (a secret typed into a key never reaches
the disk), with the value itself for numbers, booleans and null, so that a change can be shown.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any, Dict, List

from omegaconf import DictConfig, OmegaConf

from autotrain_hydra import registry
from autotrain_hydra.schema.keys import get


def _digest(value: Any) -> str:
    if OmegaConf.is_config(value):
        value = OmegaConf.to_container(value, resolve=True)
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]


def recipe(cfg: DictConfig) -> Dict[str, Any]:
    """``{key: {"digest": ..., "value": ...}}`` over the keys the trainer reads, less ``registry.RESUME_MAY_CHANGE``."""
    out: Dict[str, Any] = {}
    for key in sorted(registry.spec(cfg.trainer.name).reads - registry.RESUME_MAY_CHANGE):
        value = get(cfg, key)
        if isinstance(value, str) and os.path.exists(os.path.expanduser(value)):  # a path, however it is spelled
            value = os.path.realpath(os.path.expanduser(value))
        entry: Dict[str, Any] = {"digest": _digest(value)}
        if value is None or isinstance(value, (bool, int, float)):
            entry["value"] = value
        out[key] = entry
    return out


def changes(then: Dict[str, Any], now: Dict[str, Any]) -> List[str]:
    """The keys whose value differs between two recipes, each as ``key: <then> → <now>`` (values shown when
    they are numbers, booleans or null; a key only one of them has is a change too)."""
    lines = []
    for key in sorted(set(then) | set(now)):
        a, b = then.get(key) or {}, now.get(key) or {}
        if a.get("digest") == b.get("digest"):
            continue
        if "value" in a and "value" in b:
            lines.append(f"{key}: {a['value']} in the checkpoint, {b['value']} now")
        else:
            lines.append(f"{key}: changed")
    return lines
