"""The rules table of the trainer-parameter guide: every parameter, its guide flag, the values it accepts.

Which trainers a key applies to (elsewhere it is *ignored with a warning*) and which require it are not written
here: they come from the trainer registry (``autotrain_hydra.registry``: the keys each trainer's run reads, checked
by the contract test), so this table cannot say that a key applies where the trainer never reads it.
``FEATURES`` says which trainers each cross-cutting feature supports, from the registry too. The validator
(``schema.rules``), ``--help``, the flag CLI and the compatibility matrix in docs/ all read this table.

Light module: no torch, no Hydra.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, FrozenSet, Optional, Tuple

from autotrain_hydra import registry
from autotrain_hydra.schema.checks import (Check, between, ge, gt, list_of, null_bool_or_text, null_or_ge,
                                           one_of, open_interval, port_or_null, steps_or_off)

TRAINERS = registry.TRAINERS
ALL: FrozenSet[str] = frozenset(TRAINERS)

# report_to: the trackers transformers reports to (its integrations), or none
TRACKERS = ("wandb", "tensorboard", "mlflow", "comet_ml", "clearml", "neptune", "dvclive", "azure_ml", "codecarbon",
            "dagshub", "flyte", "kubeflow", "swanlab", "trackio", "none")
# the package each tracker needs (any of them): a tracker whose package is missing is refused before load
TRACKER_PACKAGES = {"wandb": ("wandb",), "tensorboard": ("tensorboard", "tensorboardX"), "mlflow": ("mlflow",),
                    "comet_ml": ("comet_ml",), "clearml": ("clearml",), "neptune": ("neptune",),
                    "dvclive": ("dvclive",), "azure_ml": ("azureml",), "codecarbon": ("codecarbon",),
                    "dagshub": ("dagshub",), "flyte": ("flytekit",), "kubeflow": ("kfp",), "swanlab": ("swanlab",),
                    "trackio": ("trackio",)}
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
SWEEP_PRUNERS = ("none", "median", "percentile", "successive_halving", "hyperband")
PEFT_METHODS = ("none", "lora", "qlora")
LORA_METHODS = ("lora", "qlora")  # the methods that train a LoRA adapter (qlora: on a quantised base)
QLORA_BITS = (4, 8)


def uses_lora(method: object) -> bool:
    """``peft.method`` trains a LoRA adapter (``lora``, or ``qlora`` on a base loaded in 4/8-bit)."""
    return method in LORA_METHODS
GRPO_LOSS_TYPES = ("grpo", "dr_grpo", "dapo", "bnpo")
LAUNCHERS = ("local", "multiprocess", "multinode")
STRATEGIES = ("ddp", "fsdp", "deepspeed_zero2", "deepspeed_zero3")
SHARDED = STRATEGIES[1:]  # need CUDA GPUs: the model's training state is split across processes
SHARDED_WEIGHTS = ("fsdp", "deepspeed_zero3")  # the weights themselves are split


OWN_KEYS = ("grpo", "kto")  # trainers whose own keys live under trainer.<name>


@dataclass(frozen=True)
class Param:
    key: str  # config key
    flag: Optional[str] = None  # the guide's flag; None for keys beyond the guide
    check: Optional[Check] = None
    feature: Optional[str] = None  # "distillation" | "sweep" | "eval" | "peft": only applies when that is on
    group: str = "training"  # heading in the docs and --help

    @property
    def trainers(self) -> FrozenSet[str]:
        """Where it applies (the trainers whose run reads it); set elsewhere → warned about and ignored."""
        return registry.applies_to(self.key)

    @property
    def required(self) -> FrozenSet[str]:
        """The trainers that need it set (not null)."""
        return registry.required_by(self.key)

    @property
    def name(self) -> str:
        """The guide's name for it in warnings: the flag, underscored (``--dpo-beta`` → ``dpo_beta``)."""
        if self.flag:
            return self.flag.lstrip("-").replace("-", "_")
        if self.group in OWN_KEYS:  # trainer.grpo.beta → grpo_beta (kto has a beta too)
            return f"{self.group}_{self.key.rsplit('.', 1)[-1]}"
        return self.key.rsplit(".", 1)[-1]


def _rl(key: str, flag: Optional[str], check: Optional[Check]) -> Param:
    return Param(f"trainer.rl.{key}", flag, check=check, group="ppo")


def _own(trainer: str, key: str, check: Optional[Check] = None) -> Param:
    """A key of one trainer beyond the guide, under ``trainer.<trainer>`` with TRL's name; its flag is derived
    (``trainer.grpo.num_generations`` → ``--grpo-num-generations``) and it is named ``grpo_num_generations``."""
    return Param(f"trainer.{trainer}.{key}", None, check=check, group=trainer)


PARAMS: Tuple[Param, ...] = (
    # core (required by every trainer)
    Param("model.name", "--model", group="core"),
    Param("data.path", "--data-path", group="core"),
    Param("training.lr", "--lr", check=gt(0), group="core"),
    Param("training.epochs", "--epochs", check=gt(0), group="core"),
    Param("training.batch_size", "--batch-size", check=ge(1), group="core"),
    Param("output_dir", "--output-dir", group="core"),
    # training configuration
    Param("training.gradient_accumulation", "--gradient-accumulation", check=ge(1)),
    Param("training.optimizer", "--optimizer", check=one_of(OPTIMIZERS)),
    Param("training.scheduler", "--scheduler", check=one_of(SCHEDULERS)),
    Param("training.warmup_ratio", "--warmup-ratio", check=between(0, 1, hi_open=True)),
    Param("training.weight_decay", "--weight-decay", check=ge(0)),
    Param("training.seed", "--seed", check=ge(0)),
    Param("training.mixed_precision", "--mixed-precision", check=one_of(MIXED_PRECISION + ("auto", None))),
    Param("training.block_size", "--block-size", check=ge(8)),
    Param("training.max_steps", check=steps_or_off()),
    Param("training.eval_batch_size", check=null_or_ge(1)),
    Param("training.logging_steps", check=ge(1)),
    Param("training.eval_strategy", check=one_of(EVAL_STRATEGIES)),
    Param("training.max_grad_norm", check=ge(0)),
    Param("training.eval_steps", check=null_or_ge(1)),
    Param("training.gradient_checkpointing"),
    Param("training.packing"),
    Param("training.padding_free"),
    Param("training.attn_implementation", check=one_of(ATTN_IMPLEMENTATIONS)),
    Param("training.torch_compile"),
    Param("training.use_liger_kernel"),
    Param("training.save_steps", check=null_or_ge(1)),
    Param("training.save_total_limit", check=null_or_ge(1)),
    Param("training.resume_from_checkpoint", check=null_bool_or_text("null, true, false or a checkpoint path")),
    Param("model.revision", group="core"),
    Param("model.trust_remote_code", group="core"),
    Param("model.allow_pickle_weights", group="core"),  # false: safetensors weights only (pickles run code)
    Param("overwrite_output_dir", group="core"),
    Param("validate_only", group="core"),
    Param("report_to", check=list_of(TRACKERS), group="core"),
    # PEFT / LoRA
    Param("peft.method", "--peft", check=one_of(PEFT_METHODS), group="peft"),
    Param("peft.lora_r", "--lora-r", check=ge(1), feature="peft", group="peft"),
    Param("peft.lora_alpha", "--lora-alpha", check=gt(0), feature="peft", group="peft"),
    Param("peft.lora_dropout", "--lora-dropout", check=between(0, 1, hi_open=True), feature="peft", group="peft"),
    Param("peft.target_modules", feature="peft", group="peft"),
    Param("peft.merge_adapter", feature="peft", group="peft"),
    Param("peft.bits", check=one_of(QLORA_BITS), group="peft"),  # without qlora: rules.values.quantized_base
    # data columns
    Param("data.text_column", "--text-column", group="data"),
    Param("data.train_split", group="data"),
    Param("data.valid_split", group="data"),
    Param("data.valid_path", group="data"),
    Param("data.valid_fraction", check=open_interval(0, 1, nullable=True), group="data"),
    Param("data.max_samples", check=null_or_ge(1), group="data"),
    Param("data.prompt_text_column", "--prompt-text-column", group="data"),
    Param("data.rejected_text_column", "--rejected-text-column", group="data"),
    Param("data.label_column", group="data"),
    # SFT
    Param("trainer.chat_template", "--chat-template", group="trainer"),
    Param("trainer.add_eos_token", "--add-eos-token", group="trainer"),
    Param("trainer.max_seq_length", "--max-seq-length", check=null_or_ge(8), group="trainer"),
    # DPO / ORPO
    Param("trainer.model_ref", "--model-ref", group="trainer"),
    Param("trainer.dpo_beta", "--dpo-beta", check=gt(0), group="trainer"),
    Param("trainer.orpo_alpha", "--orpo-alpha", check=gt(0), group="trainer"),
    Param("trainer.max_prompt_length", "--max-prompt-length", check=ge(1), group="trainer"),
    Param("trainer.max_completion_length", "--max-completion-length", check=ge(1), group="trainer"),
    # Reward
    Param("trainer.num_labels", "--num-labels", check=ge(1), group="trainer"),
    Param("trainer.label_smoothing", "--label-smoothing", check=between(0, 0.5, hi_open=True), group="trainer"),
    # PPO
    Param("trainer.rl.reward_model_path", "--rl-reward-model-path", group="ppo"),
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
    # GRPO (beyond the guide: TRL's GRPOTrainer)
    _own("grpo", "reward_funcs"),  # each item resolved and signature-checked by schema.rules.trainers
    _own("grpo", "reward_model_path"),
    _own("grpo", "reward_weights"),
    _own("grpo", "num_generations", ge(2)),
    _own("grpo", "max_prompt_length", null_or_ge(1)),
    _own("grpo", "max_completion_length", ge(1)),
    _own("grpo", "temperature", gt(0)),
    _own("grpo", "beta", ge(0)),
    _own("grpo", "epsilon", gt(0)),
    _own("grpo", "loss_type", one_of(GRPO_LOSS_TYPES)),
    _own("grpo", "num_iterations", ge(1)),
    _own("grpo", "use_vllm"),
    # KTO (beyond the guide: TRL's KTOTrainer)
    _own("kto", "beta", gt(0)),
    _own("kto", "desirable_weight", gt(0)),
    _own("kto", "undesirable_weight", gt(0)),
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
    Param("sweep.direction", "--sweep-direction", check=one_of(SWEEP_DIRECTIONS + (None,)), feature="sweep",
          group="sweep"),
    Param("sweep.params", "--sweep-params", feature="sweep", group="sweep"),
    Param("sweep.sampler", check=one_of(SWEEP_SAMPLERS), feature="sweep", group="sweep"),
    Param("sweep.pruner", check=one_of(SWEEP_PRUNERS), feature="sweep", group="sweep"),
    Param("sweep.pruner_startup_trials", check=ge(0), feature="sweep", group="sweep"),
    Param("sweep.pruner_warmup_steps", check=ge(0), feature="sweep", group="sweep"),
    Param("sweep.pruner_percentile", check=open_interval(0, 100), feature="sweep", group="sweep"),
    Param("sweep.pruner_min_resource", check=null_or_ge(1), feature="sweep", group="sweep"),
    Param("sweep.pruner_reduction_factor", check=ge(2), feature="sweep", group="sweep"),
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
    Param("eval.holdout_fraction", check=open_interval(0, 1), feature="eval", group="eval"),
    # Launcher (beyond the guide): where training runs
    Param("launcher.name", check=one_of(LAUNCHERS), group="launcher"),
    Param("launcher.num_processes", check=null_or_ge(1), group="launcher"),
    Param("launcher.num_machines", check=ge(1), group="launcher"),
    Param("launcher.machine_rank", check=null_or_ge(0), group="launcher"),
    Param("launcher.main_process_ip", group="launcher"),
    Param("launcher.main_process_port", check=port_or_null(), group="launcher"),
    Param("launcher.strategy", check=one_of(STRATEGIES), group="launcher"),
    Param("launcher.accelerate_config", group="launcher"),
)
PARAM_BY_KEY: Dict[str, Param] = {p.key: p for p in PARAMS}
LAUNCHER_KEYS = tuple(p.key for p in PARAMS if p.group == "launcher" and p.key != "launcher.name")


@dataclass(frozen=True)
class Feature:
    name: str  # features=[<name>]
    flag: str
    title: str = ""  # "Distillation": how its messages name it

    def unsupported_message(self, trainer: str) -> str:
        """The guide's wording: ``Distillation is not supported with PPO trainer`` (refused), ``... for reward
        models, will be ignored`` (ignored)."""
        text = f"{self.title} is not supported {registry.spec(trainer).unsupported_phrase}"
        return text + (", will be ignored" if trainer in self.ignored else "")

    def _mode(self, mode: str) -> FrozenSet[str]:
        return registry.with_feature(self.name, mode)

    @property
    def supported(self) -> FrozenSet[str]:
        return self._mode("supported")

    @property
    def ignored(self) -> FrozenSet[str]:
        """Trainers where it is warned about and ignored."""
        return self._mode("ignored")

    @property
    def refused(self) -> FrozenSet[str]:
        """Trainers where it is an error."""
        return self._mode("refused")


FEATURES: Tuple[Feature, ...] = (
    Feature("distillation", "--use-distillation", "Distillation"),
    Feature("sweep", "--use-sweep", "Hyperparameter sweep"),
    Feature("eval", "--use-enhanced-eval", "Enhanced evaluation"),
)
FEATURE_BY_NAME = {f.name: f for f in FEATURES}
# What switches a feature (or LoRA) on, and how a user writes it.
FEATURE_SWITCH = {**{f.name: f"{f.name}.enabled" for f in FEATURES}, "peft": "peft.method"}
FEATURE_HOWTO = {**{f.name: f"features=[{f.name}]" for f in FEATURES}, "peft": "peft=lora"}
REMOVED_TRAINERS = {
    "distillation": (
        "trainer=distillation was removed: distillation is now a feature of the "
        f"{registry.in_words(registry.with_feature('distillation', 'supported'))} trainers",
        "use trainer=sft features=[distillation] distillation.teacher_model=<teacher> "
        "(the guide's --trainer sft --use-distillation --teacher-model <teacher>)",
    ),
}


def ignored_message(param: Param) -> str:
    """The guide's "<name> only applies to <trainers>, will be ignored". A flag of the guide names the guide's
    trainers that read it, in the guide's words ("model_ref only applies to DPO/ORPO trainers") also where a later
    trainer reads it too (kto): the fix of the warning names every trainer (``keys_for_other_trainers``)."""
    trainers = param.trainers
    if param.flag and trainers & registry.GUIDE_TRAINERS:
        trainers = trainers & registry.GUIDE_TRAINERS
    return f"{param.name} only applies to {registry.label(trainers)}, will be ignored"
