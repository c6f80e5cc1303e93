"""``python -m autotrain_hydra --help``: written here rather than by Hydra, whose help composes every config
group of Hydra itself (about 2 s); this one reads the group folders and the rules table only."""

from __future__ import annotations

from typing import Dict, List

from autotrain_hydra import paths
from autotrain_hydra.schema.config import GROUPS
from autotrain_hydra.schema.overrides import group_options
from autotrain_hydra.schema.rules import FEATURES, PARAMS, TRAINERS, get, _DEFAULTS

HEADINGS = {"core": "Core (every trainer)", "training": "Training (every trainer)", "peft": "LoRA (peft=lora)",
            "data": "Data columns", "trainer": "Trainer-specific", "ppo": "PPO (trainer=ppo)",
            "distillation": "Knowledge distillation (features=[distillation])",
            "sweep": "Hyperparameter sweep (features=[sweep])", "eval": "Enhanced evaluation (features=[eval])",
            "launcher": "Launcher (launcher=local | multiprocess | multinode | fsdp | deepspeed_zero2 | "
                        "deepspeed_zero3)"}


def _show(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def render() -> str:
    lines: List[str] = [
        "autotrain_hydra: fine-tune a causal LM with one of six trainers, every run a Hydra config.",
        "",
        "usage: python -m autotrain_hydra [group=option ...] [key=value ...] [--cfg job] [--multirun]",
        "  python -m autotrain_hydra                                  # SFT, tiny model, sample chat data",
        "  python -m autotrain_hydra trainer=dpo training.lr=5e-7 trainer.dpo_beta=0.2 peft=lora",
        "  python -m autotrain_hydra trainer=dpo validate_only=true   # check the rules, load nothing",
        "  python -m autotrain_hydra trainer=dpo --cfg job            # print the composed config",
        "",
        "Config groups (group=option):",
    ]
    for group in GROUPS:
        options = [o for o in group_options(group, [paths.config_dir()]) if not o.startswith("base_")]
        if options:
            lines.append(f"  {group}: {', '.join(options)}")
    lines += ["", f"Trainers: {', '.join(TRAINERS)}. Features: "
              + ", ".join(f"{f.name} ({', '.join(t for t in TRAINERS if t in f.supported)})" for f in FEATURES), ""]
    by_group: Dict[str, List] = {}
    for p in PARAMS:
        by_group.setdefault(p.group, []).append(p)
    for group, params in by_group.items():
        lines.append(HEADINGS.get(group, group) + ":")
        for p in params:
            flag = p.flag or ""
            applies = "" if p.trainers == frozenset(TRAINERS) else f"  [{', '.join(t for t in TRAINERS if t in p.trainers)}]"
            lines.append(f"  {p.key:<36} {flag:<28} default {_show(get(_DEFAULTS, p.key))}{applies}")
        lines.append("")
    lines += ["Every rule: docs/compatibility.md. Hydra's own options: --hydra-help."]
    return "\n".join(lines)
