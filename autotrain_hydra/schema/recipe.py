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
        if key == "peft.bits" and get(cfg, "peft.method") != "qlora":  # the base is quantised only with qlora (and
            continue  # a checkpoint of before peft.bits existed resumes)
        value = get(cfg, key)
        if isinstance(value, str) and os.path.exists(os.path.expanduser(value)):  # a path, however it is spelled
            value = os.path.realpath(os.path.expanduser(value))
        if key == "trainer.grpo.reward_funcs":  # a reward function in a file: what the file says, too
            value = _with_file_contents(value)
        entry: Dict[str, Any] = {"digest": _digest(value)}
        if value is None or isinstance(value, (bool, int, float)):
            entry["value"] = value
        out[key] = entry
    return out


def _with_file_contents(items: Any) -> Any:
    """``./my_rewards.py:f`` items with the digest of their file's bytes: editing the function changes the recipe."""
    from autotrain_hydra.reward_funcs import is_file_item

    if OmegaConf.is_config(items):
        items = OmegaConf.to_container(items, resolve=True)
    if not isinstance(items, list):
        return items
    out = []
    for item in items:
        path = os.path.expanduser(item.rsplit(":", 1)[0]) if is_file_item(item) else None
        if path and os.path.isfile(path):
            with open(path, "rb") as f:
                item = [os.path.realpath(path) + ":" + item.rsplit(":", 1)[1], hashlib.sha256(f.read()).hexdigest()]
        out.append(item)
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
