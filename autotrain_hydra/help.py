"""``python -m autotrain_hydra [group=option ...] --help``: written here rather than by Hydra, whose help composes
every config group of Hydra itself (about 2 s). The defaults shown are the **effective** ones: those of the presets
the command chose (``model=tiny`` by default: its learning rate and block size), composed without running anything;
where a preset changes the schema's default, the schema's is shown beside it."""

from __future__ import annotations

from typing import Dict, List, Sequence

from omegaconf import DictConfig

from autotrain_hydra import paths, registry
from autotrain_hydra.schema.config import GROUPS
from autotrain_hydra.schema.errors import show_value as show
from autotrain_hydra.schema.keys import default, get, plain
from autotrain_hydra.schema.overrides import group_options
from autotrain_hydra.schema.params import FEATURES, PARAMS, TRAINERS

HEADINGS = {"core": "Core (every trainer)", "training": "Training", "peft": "LoRA (peft=lora)",
            "data": "Data columns", "trainer": "Trainer-specific", "ppo": "PPO (trainer=ppo)",
            "grpo": "GRPO (trainer=grpo)", "kto": "KTO (trainer=kto)",
            "distillation": "Knowledge distillation (features=[distillation])",
            "sweep": "Hyperparameter sweep (features=[sweep])", "eval": "Enhanced evaluation (features=[eval])",
            "launcher": "Launcher (launcher=local | multiprocess | multinode | fsdp | deepspeed_zero2 | "
                        "deepspeed_zero3)"}


def _effective(overrides: Sequence[str]) -> DictConfig:
    """The config these overrides compose to (None when they do not compose: the schema's defaults are shown)."""
    from autotrain_hydra.compat.hydra import compose_config

    try:
        return compose_config([o for o in overrides if "=" in o and not o.startswith("hydra")])
    except Exception:  # help never fails on a bad override: the run reports it
        return None


def render(overrides: Sequence[str] = ()) -> str:
    cfg = _effective(overrides)
    chosen = ", ".join(overrides) if overrides else "the defaults: trainer=sft model=tiny"
    lines: List[str] = [
        f"autotrain_hydra: fine-tune a causal LM with one of {len(TRAINERS)} trainers, every run a Hydra config.",
        "",
        "usage: python -m autotrain_hydra [group=option ...] [key=value ...] [--cfg job] [--multirun]",
        "  python -m autotrain_hydra                                  # SFT, tiny model, sample chat data",
        "  python -m autotrain_hydra trainer=dpo training.lr=5e-7 trainer.dpo_beta=0.2 peft=lora",
        "  python -m autotrain_hydra trainer=dpo validate_only=true   # check the rules, load nothing",
        "  python -m autotrain_hydra trainer=dpo --cfg job            # print the composed config",
        "  python -m autotrain_hydra trainer=dpo model=custom --help  # the defaults of those presets",
        "",
        "Config groups (group=option):",
    ]
    for group in GROUPS:
        options = [o for o in group_options(group, [paths.config_dir()]) if not o.startswith("base_")]
        if options:
            lines.append(f"  {group}: {', '.join(options)}")
    lines += ["", "Trainers:"]
    lines += [f"  {t:<8} {registry.spec(t).summary}" for t in TRAINERS]
    lines += ["", "Features: " + ", ".join(f"{f.name} ({', '.join(t for t in TRAINERS if t in f.supported)})"
                                         for f in FEATURES), "",
              f"Defaults shown: of {chosen}" + ("" if cfg is not None else " (they do not compose: the schema's)"),
              ""]
    by_group: Dict[str, List] = {}
    for p in PARAMS:
        by_group.setdefault(p.group, []).append(p)
    for group, params in by_group.items():
        lines.append(HEADINGS.get(group, group) + ":")
        for p in params:
            flag = p.flag or ""
            where = ", ".join(t for t in TRAINERS if t in p.trainers)
            applies = "" if p.trainers == frozenset(TRAINERS) else f"  [{where}]"
            try:
                value = default(p.key) if cfg is None else plain(get(cfg, p.key))
            except Exception:  # an interpolation that cannot be resolved here (an unset environment variable)
                value = "(set by an interpolation)"
            note = "" if value == default(p.key) else f" (preset; schema default {show(default(p.key))})"
            lines.append(f"  {p.key:<36} {flag:<28} default {show(value)}{note}{applies}")
        lines.append("")
    lines += ["Every rule: docs/compatibility.md. Hydra's own options: --hydra-help."]
    return "\n".join(lines)
