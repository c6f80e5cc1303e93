"""Config keys: what the schema has, reading a key, whether the user set it, and did-you-mean for the rest.

The keys come from the schema's dataclasses themselves (``schema.config``), so the list cannot drift from them. A
name users bring from another tool (``learning_rate``, ``num_train_epochs``, ``per_device_train_batch_size``,
``lora_rank``, axolotl's ``sequence_len``, LLaMA-Factory's ``cutoff_len``, ...) is mapped to our key
(``ALIASES``), and a misspelling of either is matched too, so the suggestion names the key the user meant.

Light module: no torch; of Hydra, its override parser only.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import typing
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from omegaconf import DictConfig, ListConfig, OmegaConf

from autotrain_hydra.schema.config import Config

# Names of other tools (transformers/TRL arguments, axolotl, LLaMA-Factory, autotrain) → our key.
ALIASES: Dict[str, str] = {
    "learning_rate": "training.lr",
    "num_train_epochs": "training.epochs",
    "num_epochs": "training.epochs",
    "per_device_train_batch_size": "training.batch_size",
    "train_batch_size": "training.batch_size",
    "micro_batch_size": "training.batch_size",
    "per_device_eval_batch_size": "training.eval_batch_size",
    "gradient_accumulation_steps": "training.gradient_accumulation",
    "grad_accum": "training.gradient_accumulation",
    "optim": "training.optimizer",
    "lr_scheduler_type": "training.scheduler",
    "lr_scheduler": "training.scheduler",
    "warmup_steps": "training.warmup_ratio",
    "max_length": "training.block_size",
    "model_max_length": "training.block_size",
    "sequence_len": "training.block_size",
    "cutoff_len": "training.block_size",
    "max_seq_len": "trainer.max_seq_length",
    "bf16": "training.mixed_precision",
    "fp16": "training.mixed_precision",
    "evaluation_strategy": "training.eval_strategy",
    "num_ppo_epochs": "trainer.rl.num_ppo_epochs",
    "ppo_epochs": "trainer.rl.num_ppo_epochs",
    "init_kl_coef": "trainer.rl.kl_coef",
    "kl_coef": "trainer.rl.kl_coef",
    "cliprange": "trainer.rl.clip_range",
    "vf_coef": "trainer.rl.value_loss_coef",
    "lam": "trainer.rl.gae_lambda",
    "response_length": "trainer.rl.max_new_tokens",
    "reward_model": "trainer.rl.reward_model_path",
    "beta": "trainer.dpo_beta",
    "ref_model": "trainer.model_ref",
    "lora_rank": "peft.lora_r",
    "rank": "peft.lora_r",
    "lora_target_modules": "peft.target_modules",
    "lora_target": "peft.target_modules",
    "adapter": "peft.method",
    "finetuning_type": "peft.method",
    "use_peft": "peft.method",
    "quantization": "peft.bits",  # autotrain-advanced's --quantization int4
    "quantization_bit": "peft.bits",  # LLaMA-Factory
    "load_in_4bit": "peft.method",  # axolotl / TRL (peft=qlora)
    "load_in_8bit": "peft.bits",
    "model_name_or_path": "model.name",
    "model_name": "model.name",
    "base_model": "model.name",
    "dataset": "data.path",
    "dataset_name": "data.path",
    "train_file": "data.path",
    "data_files": "data.path",
    "validation_file": "data.valid_path",
    "eval_dataset": "data.valid_path",
    "dataset_text_field": "data.text_column",
    "max_train_samples": "data.max_samples",
}


# ----------------------------------------------------------------------------------------------- the schema's keys
def _fields(cls: type, prefix: str, leaves_only: bool) -> List[str]:
    hints = typing.get_type_hints(cls)
    keys: List[str] = []
    for f in dataclasses.fields(cls):
        path = f"{prefix}{f.name}"
        kind = hints.get(f.name)
        if dataclasses.is_dataclass(kind):
            if not leaves_only:
                keys.append(path)
            keys.extend(_fields(kind, path + ".", leaves_only))
        else:
            keys.append(path)
    return keys


@functools.lru_cache(maxsize=None)
def schema_keys(leaves_only: bool = False) -> Tuple[str, ...]:
    """Every key path of the schema (``trainer.rl.gamma`` ...), not descending into Any-typed values;
    ``leaves_only`` leaves out the nodes (``trainer``, ``trainer.rl``)."""
    return tuple(_fields(Config, "", leaves_only))


def key_type(key: str) -> Any:
    """The schema's type of a key (``Optional[int]`` → ``int``); None for a key the schema does not have."""
    cls: Any = Config
    for part in key.split("."):
        if not dataclasses.is_dataclass(cls):
            return None
        kind = typing.get_type_hints(cls).get(part)
        if kind is None:
            return None
        args = [a for a in typing.get_args(kind) if a is not type(None)]
        cls = args[0] if typing.get_origin(kind) is typing.Union and len(args) == 1 else kind
    return cls


DEFAULTS: DictConfig = OmegaConf.structured(Config)  # the schema with its defaults (read-only use)
OmegaConf.set_readonly(DEFAULTS, True)


def get(cfg: DictConfig, key: str) -> Any:
    return OmegaConf.select(cfg, key, throw_on_missing=False)


def default(key: str) -> Any:
    """The schema default of a key (a plain value, containers as lists/dicts)."""
    value = OmegaConf.select(DEFAULTS, key)
    if isinstance(value, (DictConfig, ListConfig)):
        return OmegaConf.to_container(value)
    return value


def plain(value: Any) -> Any:
    if isinstance(value, (DictConfig, ListConfig)):
        return OmegaConf.to_container(value, resolve=True)
    return value


# ----------------------------------------------------------------------------------------------- what was set
def parsed(overrides: Iterable[str]) -> List[Any]:
    """Hydra's parse of each override (its public parser); one that does not parse is left out (the override check
    reports it). Parsed once per command line: the rules ask for the same overrides many times."""
    return list(_parsed(tuple(overrides)))


@functools.lru_cache(maxsize=32)
def _parsed(overrides: Tuple[str, ...]) -> Tuple[Any, ...]:
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import OverrideParseException

    parser, out = OverridesParser.create(), []
    for text in overrides:
        try:
            out += parser.parse_overrides([text])
        except OverrideParseException:
            continue
    return tuple(out)


def override_keys(overrides: Iterable[str]) -> set:
    """The keys (not config groups) a list of overrides sets: ``+trainer.dpo_beta=0.1`` → ``trainer.dpo_beta``,
    ``hydra.sweeper.n_trials=2`` too."""
    known = set(schema_keys(leaves_only=True))
    return {o.key_or_group for o in parsed(overrides)
            if not o.is_delete() and (o.key_or_group in known or "." in o.key_or_group and "/" not in o.key_or_group)}


def is_set(cfg: DictConfig, key: str, overridden: set) -> bool:
    """A key counts as set when it was overridden or differs from its schema default."""
    if key in overridden or any(key.startswith(o + ".") for o in overridden):
        return True
    return plain(get(cfg, key)) != default(key)


def feature_enabled(cfg: DictConfig, feature: str) -> bool:
    if feature == "peft":
        return get(cfg, "peft.method") not in (None, "none")
    return bool(get(cfg, f"{feature}.enabled"))


# ----------------------------------------------------------------------------------------------- did you mean
def _norm(name: str) -> str:
    return name.strip().lstrip("-+~").replace("-", "_").lower()


def alias_for(name: str) -> Optional[str]:
    """Our key for a name of another tool (a key, its last part, or a flag; exact, or misspelled)."""
    leaf = _norm(name).rsplit(".", 1)[-1]
    if leaf in ALIASES:
        return ALIASES[leaf]
    close = difflib.get_close_matches(leaf, list(ALIASES), n=1, cutoff=0.8)
    return ALIASES[close[0]] if close else None


def did_you_mean(key: str, candidates: Optional[Sequence[str]] = None) -> Optional[str]:
    """The key the user most likely meant: a schema key with the same last part, a name of another tool
    (``learning_rate`` → ``training.lr``), else the closest spelling of a key or of its last part."""
    from autotrain_hydra.schema.params import PARAMS

    candidates = list(candidates if candidates is not None else schema_keys(leaves_only=True))
    key = _norm(key)
    leaf = key.rsplit(".", 1)[-1]
    same_leaf = [c for c in candidates if c.rsplit(".", 1)[-1] == leaf and c != key]
    if same_leaf:
        return same_leaf[0]
    if leaf in ALIASES and ALIASES[leaf] in candidates:
        return ALIASES[leaf]
    for p in PARAMS:  # guide flags typed as keys: lr → training.lr, rl_gamma → trainer.rl.gamma
        if p.flag and p.name == leaf and p.key in candidates:
            return p.key
    close = difflib.get_close_matches(key, candidates, n=1, cutoff=0.75)
    if close:
        return close[0]
    by_leaf: Dict[str, str] = {}
    for c in candidates:
        by_leaf.setdefault(c.rsplit(".", 1)[-1], c)
    by_leaf.update({a: k for a, k in ALIASES.items() if k in candidates and a not in by_leaf})
    close = difflib.get_close_matches(leaf, list(by_leaf), n=1, cutoff=0.75)
    if close:
        return by_leaf[close[0]]
    return None


def unknown_key_fix(key: str) -> str:
    suggestion = did_you_mean(key)
    if suggestion:
        return f"did you mean {suggestion}? Set it as {suggestion}=<value>"
    return "see docs/usage.md for the keys, or print them with: python -m autotrain_hydra --cfg job"


def unknown_key(report: Any, key: str, value: Any) -> None:
    """The error for a key the schema does not have, with what the user most likely meant."""
    report.error(f"unknown key {key}", key, value, unknown_key_fix(key))
