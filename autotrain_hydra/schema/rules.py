"""The rules table of the trainer-parameter guide, and the validator that it drives.

One table (``PARAMS``) says, for every parameter: its guide flag, the trainers it applies to (elsewhere it is
*ignored with a warning*), the trainers that require it, and the values it accepts. ``FEATURES`` says which
trainers each cross-cutting feature supports. ``validate`` turns a composed config into a ``Report`` of every
warning and error; the compatibility matrix in docs/ is generated from the same tables (``matrix.py``).

No torch/transformers here: validation must run before anything heavy is imported.
"""

from __future__ import annotations

import difflib
import functools
import json
import os
from dataclasses import dataclass
from typing import Any, Callable, Dict, FrozenSet, Iterable, List, Optional, Sequence, Tuple

from omegaconf import DictConfig, ListConfig, OmegaConf

from autotrain_hydra.schema.config import TRAINERS, Config
from autotrain_hydra.schema.errors import Report

ALL: FrozenSet[str] = frozenset(TRAINERS)
TRAINER_LABEL = {"generic": "Generic", "sft": "SFT", "dpo": "DPO", "orpo": "ORPO", "reward": "Reward", "ppo": "PPO"}
PREFERENCE = frozenset({"dpo", "orpo"})

OPTIMIZERS = ("adamw_torch", "adamw_hf", "sgd", "adafactor")
SCHEDULERS = ("linear", "cosine", "constant")
MIXED_PRECISION = ("fp16", "bf16", "fp32")
ATTN_IMPLEMENTATIONS = ("auto", "sdpa", "varlen_sdpa", "eager", "flex_attention", "flash_attention_2",
                        "flash_attention_3")
CHAT_TEMPLATES = ("chatml", "zephyr", "llama2", "alpaca")
EVAL_STRATEGIES = ("no", "epoch", "steps")
SWEEP_BACKENDS = ("optuna", "wandb")
SWEEP_DIRECTIONS = ("minimize", "maximize")
SWEEP_SAMPLERS = ("tpe", "random", "grid", "cmaes")
PEFT_METHODS = ("none", "lora")
LAUNCHERS = ("local", "multiprocess", "multinode")
STRATEGIES = ("ddp", "fsdp", "deepspeed_zero2", "deepspeed_zero3")
SHARDED = STRATEGIES[1:]  # need CUDA GPUs: the model's training state is split across processes
SHARDED_WEIGHTS = ("fsdp", "deepspeed_zero3")  # the weights themselves are split
# Enhanced-evaluation metrics and the trainers whose output they can score.
GENERATIVE = frozenset({"generic", "sft", "dpo", "orpo"})  # runs whose eval data holds reference responses
EVAL_METRICS: Dict[str, FrozenSet[str]] = {
    "perplexity": GENERATIVE,
    "bleu": GENERATIVE,
    "rouge": GENERATIVE,
    "bertscore": GENERATIVE,
    "chrf": GENERATIVE,
    "exact_match": GENERATIVE,
    "accuracy": frozenset({"reward"}),
    "reward_margin": frozenset({"reward"}),
    "mean_reward": frozenset({"ppo"}),
}

# The trainer → built-in sample data used when data.path is not given (configs/data/<sample>.yaml).
DATA_SAMPLE = {"generic": "text", "sft": "chat", "dpo": "preference", "orpo": "preference",
               "reward": "preference", "ppo": "prompts"}


# ----------------------------------------------------------------------------------------------- value checks
@dataclass(frozen=True)
class Check:
    ok: Callable[[Any], bool]
    text: str  # "a number > 0" — completes "must be ..."
    choices: Tuple[Any, ...] = ()  # for one_of: the allowed values (did-you-mean suggestions)


def _num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def gt(lo: float) -> Check:
    return Check(lambda v: _num(v) and v > lo, f"a number > {lo:g}")


def ge(lo: float) -> Check:
    return Check(lambda v: _num(v) and v >= lo, f"a number >= {lo:g}")


def between(lo: float, hi: float, hi_open: bool = False) -> Check:
    if hi_open:
        return Check(lambda v: _num(v) and lo <= v < hi, f"in [{lo:g}, {hi:g})")
    return Check(lambda v: _num(v) and lo <= v <= hi, f"in [{lo:g}, {hi:g}]")


def one_of(choices: Sequence[Any]) -> Check:
    shown = ", ".join("null" if c is None else str(c) for c in choices)
    return Check(lambda v: v in choices, f"one of {shown}", tuple(choices))


def null_or_ge(lo: int) -> Check:
    """null (off, or: choose for me) or an integer >= lo."""
    return Check(lambda v: v is None or (isinstance(v, int) and v >= lo), f"null or >= {lo}")


# ----------------------------------------------------------------------------------------------- the table
@dataclass(frozen=True)
class Param:
    key: str  # config key
    flag: Optional[str] = None  # the guide's flag; None for keys beyond the guide
    trainers: FrozenSet[str] = ALL  # where it applies; set elsewhere → warned about and ignored
    required: FrozenSet[str] = frozenset()  # trainers that need it set (not null)
    check: Optional[Check] = None
    feature: Optional[str] = None  # "distillation" | "sweep" | "eval" | "peft": only applies when that is on
    group: str = "training"  # heading in the docs

    @property
    def name(self) -> str:
        """The guide's name for it in warnings: the flag, underscored (``--dpo-beta`` → ``dpo_beta``)."""
        if self.flag:
            return self.flag.lstrip("-").replace("-", "_")
        return self.key.rsplit(".", 1)[-1]


_rl = lambda k, flag, check: Param(f"trainer.rl.{k}", flag, frozenset({"ppo"}), check=check, group="ppo")  # noqa: E731

PARAMS: Tuple[Param, ...] = (
    # core (required by every trainer)
    Param("model.name", "--model", required=ALL, group="core"),
    Param("data.path", "--data-path", required=ALL, group="core"),
    Param("training.lr", "--lr", required=ALL, check=gt(0), group="core"),
    Param("training.epochs", "--epochs", required=ALL, check=gt(0), group="core"),
    Param("training.batch_size", "--batch-size", required=ALL, check=ge(1), group="core"),
    Param("output_dir", "--output-dir", group="core"),
    # training configuration (every trainer)
    Param("training.gradient_accumulation", "--gradient-accumulation", check=ge(1)),
    Param("training.optimizer", "--optimizer", check=one_of(OPTIMIZERS)),
    Param("training.scheduler", "--scheduler", check=one_of(SCHEDULERS)),
    Param("training.warmup_ratio", "--warmup-ratio", check=between(0, 1, hi_open=True)),
    Param("training.weight_decay", "--weight-decay", check=ge(0)),
    Param("training.seed", "--seed", check=ge(0)),
    Param("training.mixed_precision", "--mixed-precision", check=one_of(MIXED_PRECISION + ("auto", None))),
    Param("training.block_size", "--block-size", check=ge(8)),
    Param("training.max_steps", check=Check(lambda v: isinstance(v, int) and (v == -1 or v >= 1), "-1 (off) or >= 1")),
    Param("training.eval_batch_size", check=null_or_ge(1)),
    Param("training.logging_steps", check=ge(1)),
    Param("training.eval_strategy", check=one_of(EVAL_STRATEGIES)),
    Param("training.max_grad_norm", check=ge(0)),
    Param("training.eval_steps", check=null_or_ge(1)),
    Param("training.gradient_checkpointing"),
    Param("training.packing"),
    Param("training.attn_implementation", check=one_of(ATTN_IMPLEMENTATIONS)),
    Param("training.torch_compile"),
    Param("training.use_liger_kernel"),
    Param("training.save_steps", check=null_or_ge(1)),
    Param("training.save_total_limit", check=null_or_ge(1)),
    Param("training.resume_from_checkpoint",
          check=Check(lambda v: v is None or isinstance(v, (bool, str)), "null, true, false or a checkpoint path")),
    Param("model.revision", group="core"),
    Param("model.trust_remote_code", group="core"),
    Param("overwrite_output_dir", group="core"),
    Param("validate_only", group="core"),
    Param("report_to", group="core"),
    # PEFT / LoRA
    Param("peft.method", "--peft", check=one_of(PEFT_METHODS), group="peft"),
    Param("peft.lora_r", "--lora-r", check=ge(1), feature="peft", group="peft"),
    Param("peft.lora_alpha", "--lora-alpha", check=gt(0), feature="peft", group="peft"),
    Param("peft.lora_dropout", "--lora-dropout", check=between(0, 1, hi_open=True), feature="peft", group="peft"),
    Param("peft.target_modules", feature="peft", group="peft"),
    Param("peft.merge_adapter", feature="peft", group="peft"),
    # data columns
    Param("data.text_column", "--text-column", group="data"),
    Param("data.train_split", group="data"),
    Param("data.valid_split", group="data"),
    Param("data.valid_path", group="data"),
    Param("data.valid_fraction", check=Check(lambda v: v is None or (_num(v) and 0 < v < 1), "null or in (0, 1)"),
          group="data"),
    Param("data.max_samples", check=null_or_ge(1), group="data"),
    Param("data.prompt_text_column", "--prompt-text-column", frozenset({"dpo", "orpo", "reward", "ppo"}),
          required=PREFERENCE, group="data"),
    Param("data.rejected_text_column", "--rejected-text-column", frozenset({"dpo", "orpo", "reward"}),
          required=PREFERENCE | {"reward"}, group="data"),
    # SFT
    Param("trainer.chat_template", "--chat-template", frozenset({"sft"}), group="trainer"),
    Param("trainer.add_eos_token", "--add-eos-token", frozenset({"sft"}), group="trainer"),
    Param("trainer.max_seq_length", "--max-seq-length", frozenset({"sft"}), check=null_or_ge(8), group="trainer"),
    # DPO / ORPO
    Param("trainer.model_ref", "--model-ref", PREFERENCE, group="trainer"),
    Param("trainer.dpo_beta", "--dpo-beta", frozenset({"dpo"}), check=gt(0), group="trainer"),
    Param("trainer.orpo_alpha", "--orpo-alpha", frozenset({"orpo"}), check=gt(0), group="trainer"),
    Param("trainer.max_prompt_length", "--max-prompt-length", PREFERENCE, check=ge(1), group="trainer"),
    Param("trainer.max_completion_length", "--max-completion-length", PREFERENCE, check=ge(1), group="trainer"),
    # Reward
    Param("trainer.num_labels", "--num-labels", frozenset({"reward"}), check=ge(1), group="trainer"),
    Param("trainer.label_smoothing", "--label-smoothing", frozenset({"reward"}), check=between(0, 0.5, hi_open=True),
          group="trainer"),
    # PPO
    Param("trainer.rl.reward_model_path", "--rl-reward-model-path", frozenset({"ppo"}), required=frozenset({"ppo"}),
          group="ppo"),
    _rl("gamma", "--rl-gamma", between(0, 1)),
    _rl("gae_lambda", "--rl-gae-lambda", between(0, 1)),
    _rl("kl_coef", "--rl-kl-coef", ge(0)),
    _rl("value_loss_coef", "--rl-value-loss-coef", ge(0)),
    _rl("clip_range", "--rl-clip-range", gt(0)),
    _rl("num_ppo_epochs", "--rl-num-ppo-epochs", ge(1)),
    _rl("chunk_size", "--rl-chunk-size", ge(1)),
    _rl("mini_batch_size", "--rl-mini-batch-size", ge(1)),
    _rl("max_new_tokens", None, ge(1)),
    _rl("temperature", None, gt(0)),
    _rl("stop_on_eos", None, None),
    # Knowledge distillation
    Param("distillation.teacher_model", "--teacher-model", feature="distillation", group="distillation"),
    Param("distillation.teacher_prompt_template", "--teacher-prompt-template", feature="distillation",
          group="distillation"),
    Param("distillation.student_prompt_template", "--student-prompt-template", feature="distillation",
          group="distillation"),
    Param("distillation.temperature", "--distill-temperature", check=gt(0), feature="distillation",
          group="distillation"),
    Param("distillation.alpha", "--distill-alpha", check=between(0, 1), feature="distillation", group="distillation"),
    Param("distillation.max_new_tokens", check=ge(1), feature="distillation", group="distillation"),
    Param("distillation.teacher_dtype", check=one_of(("fp32", "bf16", "fp16", None)), feature="distillation",
          group="distillation"),
    # Hyperparameter sweep
    Param("sweep.backend", "--sweep-backend", check=one_of(SWEEP_BACKENDS), feature="sweep", group="sweep"),
    Param("sweep.n_trials", "--sweep-n-trials", check=ge(1), feature="sweep", group="sweep"),
    Param("sweep.metric", "--sweep-metric", feature="sweep", group="sweep"),
    Param("sweep.direction", "--sweep-direction", check=one_of(SWEEP_DIRECTIONS), feature="sweep", group="sweep"),
    Param("sweep.params", "--sweep-params", feature="sweep", group="sweep"),
    Param("sweep.sampler", check=one_of(SWEEP_SAMPLERS), feature="sweep", group="sweep"),
    Param("sweep.seed", check=ge(0), feature="sweep", group="sweep"),
    Param("sweep.storage", feature="sweep", group="sweep"),
    Param("sweep.study_name", feature="sweep", group="sweep"),
    Param("sweep.heartbeat_interval", check=ge(1), feature="sweep", group="sweep"),
    Param("sweep.grace_period", check=null_or_ge(1), feature="sweep", group="sweep"),
    # Enhanced evaluation
    Param("eval.metrics", "--eval-metrics", feature="eval", group="eval"),
    Param("eval.dataset_path", "--eval-dataset-path", feature="eval", group="eval"),
    Param("eval.batch_size", "--eval-batch-size", check=ge(1), feature="eval", group="eval"),
    Param("eval.save_predictions", "--eval-save-predictions", feature="eval", group="eval"),
    Param("eval.benchmark", "--eval-benchmark", feature="eval", group="eval"),
    Param("eval.max_new_tokens", check=ge(1), feature="eval", group="eval"),
    Param("eval.do_sample", feature="eval", group="eval"),
    Param("eval.before_training", feature="eval", group="eval"),
    Param("eval.max_samples", check=null_or_ge(1), feature="eval", group="eval"),
    Param("eval.bertscore_model", feature="eval", group="eval"),
    Param("eval.holdout_fraction", check=Check(lambda v: _num(v) and 0 < v < 1, "in (0, 1)"), feature="eval",
          group="eval"),
    # Launcher (beyond the guide): where training runs
    Param("launcher.name", check=one_of(LAUNCHERS), group="launcher"),
    Param("launcher.num_processes", check=null_or_ge(1), group="launcher"),
    Param("launcher.num_machines", check=ge(1), group="launcher"),
    Param("launcher.machine_rank", check=null_or_ge(0), group="launcher"),
    Param("launcher.main_process_ip", group="launcher"),
    Param("launcher.main_process_port",
          check=Check(lambda v: v is None or (isinstance(v, int) and 1 <= v <= 65535), "null or a port in [1, 65535]"),
          group="launcher"),
    Param("launcher.strategy", check=one_of(STRATEGIES), group="launcher"),
    Param("launcher.accelerate_config", group="launcher"),
)
PARAM_BY_KEY: Dict[str, Param] = {p.key: p for p in PARAMS}


@dataclass(frozen=True)
class Feature:
    name: str  # features=[<name>]
    flag: str
    supported: FrozenSet[str]
    ignored: FrozenSet[str] = frozenset()  # warned about and ignored
    refused: FrozenSet[str] = frozenset()  # an error
    ignored_message: str = ""
    refused_message: str = ""


FEATURES: Tuple[Feature, ...] = (
    Feature("distillation", "--use-distillation", frozenset({"generic", "sft", "dpo", "orpo"}),
            ignored=frozenset({"reward"}), refused=frozenset({"ppo"}),
            ignored_message="Distillation is not supported for reward models, will be ignored",
            refused_message="Distillation is not supported with PPO trainer"),
    Feature("sweep", "--use-sweep", ALL),
    Feature("eval", "--use-enhanced-eval", ALL),
)
FEATURE_BY_NAME = {f.name: f for f in FEATURES}
FEATURE_SWITCH = {"distillation": "distillation.enabled", "sweep": "sweep.enabled", "eval": "eval.enabled",
                  "peft": "peft.method"}
FEATURE_HOWTO = {"distillation": "features=[distillation]", "sweep": "features=[sweep]", "eval": "features=[eval]",
                 "peft": "peft=lora"}
REMOVED_TRAINERS = {
    "distillation": (
        "trainer=distillation was removed: distillation is now a feature of the generic, sft, dpo and orpo trainers",
        "use trainer=sft features=[distillation] distillation.teacher_model=<teacher> "
        "(the guide's --trainer sft --use-distillation --teacher-model <teacher>)",
    ),
}


def trainers_label(trainers: Iterable[str]) -> str:
    names = [TRAINER_LABEL[t] for t in TRAINERS if t in set(trainers)]
    return "/".join(names) + (" trainers" if len(names) > 1 else " trainer")


def ignored_message(param: Param) -> str:
    return f"{param.name} only applies to {trainers_label(param.trainers)}, will be ignored"


# ----------------------------------------------------------------------------------------------- schema keys
_DEFAULTS: DictConfig = OmegaConf.structured(Config)  # the schema with its defaults (read-only use)


@functools.lru_cache(maxsize=None)
def schema_keys(leaves_only: bool = False) -> Tuple[str, ...]:
    """Every key path of the schema (``trainer.rl.gamma`` ...), not descending into Any-typed values;
    ``leaves_only`` leaves out the nodes (``trainer``, ``trainer.rl``)."""
    return tuple(_keys(_DEFAULTS, "", leaves_only))


def _keys(node: DictConfig, prefix: str, leaves_only: bool) -> List[str]:
    keys = []
    for k in node.keys():
        path = f"{prefix}{k}"
        child = node._get_node(k)
        if isinstance(child, DictConfig) and OmegaConf.get_type(child) not in (dict, None):
            if not leaves_only:
                keys.append(path)
            keys.extend(_keys(child, path + ".", leaves_only))
        else:
            keys.append(path)
    return keys


def did_you_mean(key: str, candidates: Optional[Sequence[str]] = None) -> Optional[str]:
    """The closest schema key: a key whose last part is the same, else the closest spelling."""
    candidates = list(candidates if candidates is not None else schema_keys(leaves_only=True))
    leaf = key.rsplit(".", 1)[-1]
    same_leaf = [c for c in candidates if c.rsplit(".", 1)[-1] == leaf and c != key]
    if same_leaf:
        return same_leaf[0]
    by_leaf = {}
    for c in candidates:
        by_leaf.setdefault(c.rsplit(".", 1)[-1], c)
    close = difflib.get_close_matches(key, candidates, n=1, cutoff=0.75)
    if close:
        return close[0]
    close = difflib.get_close_matches(leaf, list(by_leaf), n=1, cutoff=0.75)
    if close:
        return by_leaf[close[0]]
    # guide flags typed as keys: lr → training.lr, rl_gamma → trainer.rl.gamma
    for p in PARAMS:
        if p.flag and p.name == leaf:
            return p.key
    return None


def unknown_key_issue(report: Report, key: str, value: Any) -> None:
    suggestion = did_you_mean(key)
    if suggestion:
        fix = f"did you mean {suggestion}? Set it as {suggestion}=<value>"
    else:
        fix = "see README.md for the keys, or print them with: python -m autotrain_hydra --cfg job"
    report.error(f"unknown key {key}", key, value, fix)


# ----------------------------------------------------------------------------------------------- helpers
def get(cfg: DictConfig, key: str) -> Any:
    return OmegaConf.select(cfg, key, throw_on_missing=False)


def _default(key: str) -> Any:
    return OmegaConf.select(_DEFAULTS, key)


def override_keys(overrides: Iterable[str]) -> set:
    """Keys a list of Hydra overrides sets (``+trainer.dpo_beta=0.1`` → ``trainer.dpo_beta``); groups excluded."""
    keys = set()
    for o in overrides:
        if "=" not in o:
            continue
        k = o.split("=", 1)[0].lstrip("+~").split("@", 1)[0]
        if "/" not in k and "." in k or k in PARAM_BY_KEY:
            keys.add(k)
    return keys


def is_set(cfg: DictConfig, key: str, overridden: set) -> bool:
    """A key counts as set when it was overridden or differs from its schema default."""
    if key in overridden or any(key.startswith(o + ".") for o in overridden):
        return True
    value = get(cfg, key)
    if isinstance(value, (DictConfig, ListConfig)):
        value = OmegaConf.to_container(value, resolve=True)
    default = _default(key)
    if isinstance(default, (DictConfig, ListConfig)):
        default = OmegaConf.to_container(default)
    return value != default


def feature_enabled(cfg: DictConfig, feature: str) -> bool:
    if feature == "peft":
        return get(cfg, "peft.method") not in (None, "none")
    return bool(get(cfg, f"{feature}.enabled"))


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


DEFAULT_EVAL_METRICS = {"reward": ["accuracy", "reward_margin"], "ppo": ["mean_reward"]}


def eval_metrics(cfg: DictConfig) -> List[str]:
    """The metrics enhanced evaluation computes: ``eval.metrics``, or the trainer's default."""
    metrics = normalize_metrics(get(cfg, "eval.metrics"))
    if metrics is None:
        return list(DEFAULT_EVAL_METRICS.get(get(cfg, "trainer.name"), ["perplexity"]))
    return metrics


def parse_sweep_params(value: Any) -> Any:
    """``sweep.params``: the guide's JSON string, or a mapping; returned as a dict (or None)."""
    if isinstance(value, DictConfig):
        return OmegaConf.to_container(value)
    if isinstance(value, str):
        parsed = json.loads(value)
        if not isinstance(parsed, dict):
            raise ValueError("a JSON object is needed")
        return parsed
    return value


def looks_like_path(value: str) -> bool:
    return value.startswith(("./", "../", "/", "~", ".\\")) or value in (".", "..") or os.path.splitext(value)[1] in (
        ".jsonl", ".json", ".csv", ".parquet", ".txt")


# ----------------------------------------------------------------------------------------------- data sample
def resolve_data_sample(cfg: DictConfig, config_dir: Optional[str] = None) -> Optional[str]:
    """With ``data.path`` null, fill the data node from the trainer's built-in sample (keys the user left at their
    defaults only); a sweep on an eval metric without eval data holds out a validation slice. Returns a note for
    the log, or None when nothing was filled in."""
    notes = [n for n in (_fill_data_sample(cfg, config_dir), _sweep_holdout(cfg)) if n]
    return "; ".join(notes) or None


SWEEP_HOLDOUT = 0.1


def _sweep_holdout(cfg: DictConfig) -> Optional[str]:
    """The guide's sweep example optimises eval_loss with one data file: hold out SWEEP_HOLDOUT of the training
    rows (seeded, the same in every trial) rather than refuse the sweep."""
    metric = get(cfg, "sweep.metric") or ""
    if not feature_enabled(cfg, "sweep") or not metric.startswith("eval") or metric.startswith("eval/") \
            or get(cfg, "trainer.name") == "ppo":
        return None
    if get(cfg, "data.valid_path") or get(cfg, "data.valid_split") or get(cfg, "data.valid_fraction"):
        return None
    with _open(cfg):
        OmegaConf.update(cfg, "data.valid_fraction", SWEEP_HOLDOUT, merge=False)
    return (f"sweep.metric={metric} needs eval data and none was given: holding out {SWEEP_HOLDOUT:.0%} of the "
            f"training rows in every trial (data.valid_fraction; set data.valid_path for your own)")


def _fill_data_sample(cfg: DictConfig, config_dir: Optional[str]) -> Optional[str]:
    if get(cfg, "data.path") is not None:
        return None
    trainer = get(cfg, "trainer.name")
    sample = DATA_SAMPLE.get(trainer)
    if sample is None:
        return None
    from autotrain_hydra import paths

    preset = OmegaConf.load(os.path.join(config_dir or paths.config_dir(), "data", f"{sample}.yaml"))
    for k, v in preset.items():
        if k == "defaults":
            continue
        if get(cfg, f"data.{k}") == _default(f"data.{k}"):
            with _open(cfg):
                OmegaConf.update(cfg, f"data.{k}", v, merge=False)
    return f"data.path not set: trainer={trainer} uses the built-in sample data ({sample}: {get(cfg, 'data.path')})"


class _open:
    """Temporarily lift struct/readonly flags of a config."""

    def __init__(self, cfg: DictConfig):
        self.cfg = cfg

    def __enter__(self):
        self.flags = (OmegaConf.is_readonly(self.cfg), OmegaConf.is_struct(self.cfg))
        OmegaConf.set_readonly(self.cfg, False)
        OmegaConf.set_struct(self.cfg, False)

    def __exit__(self, *exc):
        OmegaConf.set_readonly(self.cfg, self.flags[0])
        OmegaConf.set_struct(self.cfg, self.flags[1])


# ----------------------------------------------------------------------------------------------- validate
def validate(cfg: DictConfig, overrides: Iterable[str] = (), check_filesystem: bool = True) -> Report:
    """Every warning and error of a composed config, per the guide's rules."""
    report = Report()
    overridden = override_keys(overrides)
    trainer = get(cfg, "trainer.name")

    _check_unknown_keys(cfg, report)

    if trainer in REMOVED_TRAINERS:
        msg, fix = REMOVED_TRAINERS[trainer]
        report.error(msg, "trainer", trainer, fix)
        return report
    if trainer not in TRAINERS:
        report.error(f"unknown trainer {trainer}", "trainer", trainer, f"choose one of {', '.join(TRAINERS)}")
        return report

    # values
    for p in PARAMS:
        value = get(cfg, p.key)
        if p.check is not None and value is not None and not p.check.ok(value):
            report.error(f"{p.key} must be {p.check.text}", p.key, value, _value_fix(p, value))

    # required keys
    for p in PARAMS:
        if trainer in p.required and get(cfg, p.key) in (None, ""):
            flag = f" (the guide's {p.flag})" if p.flag else ""
            report.error(f"{trainer} requires {p.key}", p.key, None, f"set {p.key}=<value>{flag}")

    # keys that do not apply to this trainer, or whose feature is off
    for p in PARAMS:
        if not is_set(cfg, p.key, overridden):
            continue
        if trainer not in p.trainers and trainer not in p.required:
            report.warn(ignored_message(p), p.key, get(cfg, p.key),
                        f"remove it, or use {' / '.join('trainer=' + t for t in TRAINERS if t in p.trainers)}")
        elif p.feature and not feature_enabled(cfg, p.feature):
            feat = FEATURE_BY_NAME.get(p.feature)
            if feat and trainer in feat.ignored | feat.refused:
                continue  # reported once below, with the feature's own wording
            report.warn(f"{p.name} only applies when {p.feature} is enabled ({FEATURE_HOWTO[p.feature]}), "
                        f"will be ignored", p.key, get(cfg, p.key), f"add {FEATURE_HOWTO[p.feature]} or remove it")

    # features per trainer
    for feat in FEATURES:
        enabled = feature_enabled(cfg, feat.name)
        supported = ", ".join(t for t in TRAINERS if t in feat.supported)
        if enabled and trainer in feat.refused:
            report.error(feat.refused_message, FEATURE_SWITCH[feat.name], True,
                         f"remove {feat.name} from features (it is available for: {supported})")
        elif enabled and trainer in feat.ignored:
            report.warn(feat.ignored_message, FEATURE_SWITCH[feat.name], True,
                        f"remove {feat.name} from features (it is available for: {supported})")
        if trainer in feat.ignored | feat.refused:
            label = "for reward models" if trainer == "reward" else f"with {TRAINER_LABEL[trainer]} trainer"
            for p in PARAMS:
                if p.feature == feat.name and is_set(cfg, p.key, overridden) and p.flag:
                    report.warn(f"{p.name} is not supported {label}, will be ignored", p.key, get(cfg, p.key),
                                "remove it")

    _check_combinations(cfg, report, trainer)
    _check_launcher(cfg, report, trainer, overridden)
    if check_filesystem:
        _check_paths(cfg, report, trainer)
    return report


def _value_fix(p: Param, value: Any) -> str:
    if p.check and p.check.choices:
        choices = [str(c) for c in p.check.choices if c is not None]
        close = [c for c in choices if c.startswith(str(value))] or difflib.get_close_matches(
            str(value), choices, n=1, cutoff=0.5)
        hint = f"did you mean {close[0]}? " if close else ""
        return f"{hint}set {p.key} to {p.check.text[len('one of '):].replace(', ', ' | ')}"
    return f"set {p.key} to {p.check.text}"


def _check_unknown_keys(cfg: DictConfig, report: Report) -> None:
    known = set(schema_keys())

    def walk(node: DictConfig, prefix: str) -> None:
        for k in node.keys():
            path = f"{prefix}{k}"
            if path not in known:
                child = node._get_node(k)
                unknown_key_issue(report, path, child._value() if child is not None else None)
                continue
            child = node._get_node(k)
            if isinstance(child, DictConfig) and any(s.startswith(path + ".") for s in known):
                walk(child, path + ".")

    walk(cfg, "")


def _check_combinations(cfg: DictConfig, report: Report, trainer: str) -> None:
    if get(cfg, "model.encoder_only") and trainer != "reward":
        report.error(f"model.name={get(cfg, 'model.name')} is an encoder-only model: it cannot generate text and can "
                     f"only be trained with trainer=reward", "model.name", get(cfg, "model.name"),
                     "use trainer=reward, or a causal LM (model=tiny, model=llama2_7b, model=mistral_7b, ...)")
    chat_template = get(cfg, "trainer.chat_template")
    if chat_template is not None and chat_template not in CHAT_TEMPLATES and "{%" not in chat_template \
            and not os.path.isfile(os.path.expanduser(chat_template)):
        close = difflib.get_close_matches(chat_template, CHAT_TEMPLATES, n=1)
        report.error("trainer.chat_template must be a named template, a Jinja template or a template file",
                     "trainer.chat_template", chat_template,
                     (f"did you mean {close[0]}? " if close else "") + f"use one of {', '.join(CHAT_TEMPLATES)}, "
                     "null for the tokenizer's own, or a path to a .jinja file")
    if get(cfg, "training.eval_strategy") == "steps" and not get(cfg, "training.eval_steps"):
        report.error("training.eval_strategy=steps needs training.eval_steps", "training.eval_steps", None,
                     "set training.eval_steps=<n>, or training.eval_strategy=epoch")
    if feature_enabled(cfg, "distillation") and trainer in FEATURE_BY_NAME["distillation"].supported \
            and not get(cfg, "distillation.teacher_model"):
        report.error("distillation requires distillation.teacher_model", "distillation.teacher_model", None,
                     "set distillation.teacher_model=<model name or path> (the guide's --teacher-model)")
    if feature_enabled(cfg, "distillation") and trainer in FEATURE_BY_NAME["distillation"].supported:
        _check_distillation(report, cfg)
    # eval metrics
    metrics_raw = get(cfg, "eval.metrics")
    try:
        metrics = eval_metrics(cfg)
    except ValueError as e:
        report.error(f"eval.metrics is not a list or a JSON list ({e})", "eval.metrics", metrics_raw,
                     'write it as eval.metrics=[bleu,rouge] or eval.metrics=\'["bleu", "rouge"]\'')
        metrics = []
    if not isinstance(metrics, list):
        report.error("eval.metrics must be a list of metric names", "eval.metrics", metrics_raw,
                     "write it as eval.metrics=[bleu,rouge]")
        metrics = []
    if feature_enabled(cfg, "eval"):
        for m in metrics:
            if m not in EVAL_METRICS:
                close = difflib.get_close_matches(str(m), list(EVAL_METRICS), n=1)
                report.error(f"unknown evaluation metric {m}", "eval.metrics", metrics_raw,
                             (f"did you mean {close[0]}? " if close else "") + f"choose from {', '.join(EVAL_METRICS)}")
            elif trainer not in EVAL_METRICS[m]:
                fits = [k for k, v in EVAL_METRICS.items() if trainer in v]
                report.error(f"evaluation metric {m} does not apply to {trainers_label([trainer])}", "eval.metrics",
                             metrics_raw, f"metrics for trainer={trainer}: {', '.join(fits)}")
    if feature_enabled(cfg, "eval") and get(cfg, "eval.benchmark"):
        from autotrain_hydra.features.benchmark import problems

        if trainer not in GENERATIVE | {"ppo"}:
            report.error(f"eval.benchmark runs text-generation tasks: not for {trainers_label([trainer])}",
                         "eval.benchmark", get(cfg, "eval.benchmark"), "remove eval.benchmark")
        for message, fix in problems(get(cfg, "eval.benchmark")):
            report.error(message, "eval.benchmark", get(cfg, "eval.benchmark"), fix)
    try:
        parse_sweep_params(get(cfg, "sweep.params"))
    except ValueError as e:
        report.error(f"sweep.params is not a JSON object ({e})", "sweep.params", get(cfg, "sweep.params"),
                     """write it as sweep.params='{"training.lr": "tag(log, interval(1e-6, 1e-3))"}' """
                     "or as a YAML mapping in an experiment file")
    else:
        if feature_enabled(cfg, "sweep"):
            _check_sweep(cfg, report)


LAUNCHER_KEYS = ("launcher.num_processes", "launcher.num_machines", "launcher.machine_rank",
                 "launcher.main_process_ip", "launcher.main_process_port", "launcher.strategy",
                 "launcher.accelerate_config")


def _check_launcher(cfg: DictConfig, report: Report, trainer: str, overridden: set) -> None:
    """launcher=local|multiprocess|multinode: what each needs, and what none of them can run."""
    name = get(cfg, "launcher.name")
    if name not in LAUNCHERS:
        return  # reported with the values
    if name == "local":
        for key in LAUNCHER_KEYS:
            if is_set(cfg, key, overridden):
                report.warn(f"{key.split('.', 1)[1]} only applies with launcher=multiprocess or launcher=multinode, "
                            "will be ignored", key, get(cfg, key),
                            "add launcher=multiprocess (one machine) or launcher=multinode, or remove it")
        return
    if trainer == "ppo":
        report.error("PPO trains in one process: its rollouts and updates are not sharded across processes",
                     "launcher", name, "use launcher=local for trainer=ppo")
    machines = get(cfg, "launcher.num_machines")
    if name == "multiprocess" and _num(machines) and machines > 1:
        report.error("launcher=multiprocess runs on one machine", "launcher.num_machines", machines,
                     "use launcher=multinode for several machines")
    if name == "multinode":
        if _num(machines) and machines < 2:
            report.error("launcher=multinode needs launcher.num_machines >= 2", "launcher.num_machines", machines,
                         "set launcher.num_machines=<machines>, or use launcher=multiprocess on one machine")
        rank = get(cfg, "launcher.machine_rank")
        if _num(rank) and _num(machines) and rank >= machines:
            report.error(f"launcher.machine_rank must be below launcher.num_machines ({machines})",
                         "launcher.machine_rank", rank, f"use 0..{machines - 1}, one per machine")
    if get(cfg, "launcher.strategy") in SHARDED_WEIGHTS and get(cfg, "launcher.accelerate_config") is None \
            and get(cfg, "peft.method") == "lora" and (get(cfg, "peft.merge_adapter") or trainer == "reward"):
        what = "the reward scorer is saved merged" if trainer == "reward" else "peft.merge_adapter=true"
        report.error(f"{what}: merging a LoRA adapter needs the whole model in one process, and "
                     f"launcher.strategy={get(cfg, 'launcher.strategy')} shards it", "launcher.strategy",
                     get(cfg, "launcher.strategy"), "use launcher.strategy=ddp, or train the adapter sharded and "
                     "merge it afterwards (peft.merge_adapter=false)")
    config = get(cfg, "launcher.accelerate_config")
    if config is not None and not os.path.isfile(os.path.expanduser(str(config))):
        report.error("launcher.accelerate_config is not a file", "launcher.accelerate_config", config,
                     "give the path of an accelerate config file (accelerate config --config_file <path> writes one), "
                     "or remove it to use launcher.strategy's")
    elif config is not None and is_set(cfg, "launcher.strategy", overridden):
        report.warn("launcher.strategy is replaced by launcher.accelerate_config, will be ignored",
                    "launcher.strategy", get(cfg, "launcher.strategy"), "remove one of the two")


def _check_sweep(cfg: DictConfig, report: Report) -> None:
    """Before the first trial: the metric is one the run reports, the search space parses, the backend runs."""
    from autotrain_hydra.features import sweep

    metric = get(cfg, "sweep.metric")
    reported = sweep.reported_metrics(cfg)
    benchmark = feature_enabled(cfg, "eval") and get(cfg, "eval.benchmark") and metric.startswith("eval/benchmark/")
    if metric not in reported and not benchmark:
        if metric.startswith("eval/"):
            hint = " (enhanced-evaluation metrics are those of eval.metrics, with features=[eval])"
        elif metric.startswith("eval") and get(cfg, "trainer.name") == "ppo":
            hint = " (PPO reports no eval loss: its eval metrics are eval_mean_reward_before/after)"
        elif metric.startswith("eval"):
            hint = " (eval metrics need eval data: data.valid_path, data.valid_split or data.valid_fraction)"
        else:
            hint = ""
        report.error(f"sweep.metric {metric} is not a metric this run reports{hint}", "sweep.metric", metric,
                     f"choose one of {', '.join(sorted(reported))}")
    try:
        problems = sweep.check_space(sweep.search_space(cfg))
    except sweep.SweepSpecError as e:
        problems = [str(e)]
    for problem in problems:
        report.error(f"sweep.params: {problem}", "sweep.params", get(cfg, "sweep.params"),
                     "use the sweeper's grammar: interval(a, b), int(interval(a, b)), tag(log, interval(a, b)), "
                     "range(a, b), choice(x, y), or {type, low, high, log} / a list of choices")


MODEL_KEYS = ("model.name", "trainer.model_ref", "distillation.teacher_model")


def _check_paths(cfg: DictConfig, report: Report, trainer: str) -> None:
    """Cheap filesystem checks (no model loaded): local paths that do not exist, a non-empty output dir."""
    for key, what in (("model.name", "model"), ("trainer.model_ref", "reference model"),
                      ("distillation.teacher_model", "teacher model"), ("data.path", "data"),
                      ("data.valid_path", "validation data"), ("eval.dataset_path", "evaluation data")):
        value = get(cfg, key)
        if isinstance(value, str) and value != "tiny" and looks_like_path(value) \
                and not os.path.exists(os.path.expanduser(value)):
            report.error(f"{what} not found: {value} does not exist", key, value,
                         f"check the path, or give a hub name for {key}")
        elif key in MODEL_KEYS and isinstance(value, str) and os.path.isdir(os.path.expanduser(value)) and not any(
                os.path.isfile(os.path.join(os.path.expanduser(value), f)) for f in ("config.json",
                                                                                       "adapter_config.json")):
            report.error(f"{what} not found: {value} is a folder with no config.json: not a saved model", key, value,
                         f"point {key} at the folder save_pretrained wrote (config.json inside), or a hub name")
    path = get(cfg, "trainer.rl.reward_model_path")
    if trainer == "ppo" and isinstance(path, str):
        problem = reward_model_problem(os.path.expanduser(path))
        if problem:
            report.error(f"Reward model not found: {path} {problem}", "trainer.rl.reward_model_path", path,
                         "train one first (trainer=reward output_dir=./reward_model) and point "
                         "trainer.rl.reward_model_path at its output_dir")
    out = get(cfg, "output_dir")
    resume = get(cfg, "training.resume_from_checkpoint")
    if isinstance(out, str):
        check_output_dir(report, out, bool(get(cfg, "overwrite_output_dir")) or resuming(cfg))
    if resume is True and not isinstance(out, str):
        report.error("training.resume_from_checkpoint=true needs the output_dir of the run to continue",
                     "output_dir", out, "set output_dir=<the run's output dir> (a new Hydra run dir has no checkpoint)")
    if isinstance(resume, str) and not os.path.isdir(os.path.expanduser(resume)):
        report.error(f"checkpoint not found: {resume} is not a directory", "training.resume_from_checkpoint", resume,
                     "give a checkpoint-N folder of <output_dir>/checkpoints, or true for the last complete one")


def resuming(cfg: DictConfig) -> bool:
    return get(cfg, "training.resume_from_checkpoint") not in (None, False)


def check_output_dir(report: Report, path: str, overwrite: bool, key: str = "output_dir") -> None:
    """A run never writes into a non-empty output dir unless told to overwrite, or it resumes from it."""
    if not overwrite and output_dir_in_use(path):
        report.error(f"{key} {path} is not empty: a run never overwrites earlier results", key, path,
                     f"choose a new {key}, or set overwrite_output_dir=true to replace what is there")


def _check_distillation(report: Report, cfg: DictConfig) -> None:
    for key in ("distillation.teacher_prompt_template", "distillation.student_prompt_template"):
        value = get(cfg, key)
        if value is not None and "{input}" not in str(value):
            report.error(f"{key} must contain the {{input}} placeholder", key, value,
                         f"write where the prompt goes, e.g. {key}='### Question: {{input}}\\n### Answer: '")


def reward_model_problem(path: str) -> Optional[str]:
    """Why ``path`` is not a saved sequence-classification model (read from its config.json), or None."""
    if not os.path.isdir(path):
        return "is not a directory"
    config = os.path.join(path, "config.json")
    if not os.path.isfile(config):
        hint = " (it holds a LoRA adapter only)" if os.path.isfile(os.path.join(path, "adapter_config.json")) else ""
        return f"has no config.json{hint}: it is not a saved model"
    try:
        with open(config, encoding="utf-8") as f:
            architectures = json.load(f).get("architectures") or []
    except (OSError, ValueError) as e:
        return f"has an unreadable config.json ({e})"
    if not any(a.endswith("ForSequenceClassification") for a in architectures):
        return (f"is not a sequence-classification model (config.json architectures: {', '.join(architectures) or 'none'}"
                f"); a reward model is what trainer=reward saves")
    return None


# Files a run directory holds before the run writes anything (Hydra's own).
RUN_DIR_SCAFFOLD = {".hydra", "train.log", "multirun.yaml"}


def output_dir_in_use(path: str) -> bool:
    path = os.path.expanduser(path)
    return os.path.isdir(path) and bool(set(os.listdir(path)) - RUN_DIR_SCAFFOLD)
