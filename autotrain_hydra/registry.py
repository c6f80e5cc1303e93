"""The trainer registry: what each trainer is, declared in one place and read by every layer.

A ``TrainerSpec`` says, for one trainer: its name and label, the data shape it trains on (and so its built-in
sample), the module whose ``train(job)`` trains it, **the config keys its run reads** (the rules table derives from
them which keys apply to which trainer, and a contract test runs every trainer to check that it reads exactly
these), the keys it requires, the metrics it reports, its enhanced-evaluation metrics, its default search space and
sweep metric, the columns its data are conventionally stored in, and what it supports (distillation, several
processes, encoder-only models).

Rules (``schema``), help, the flag CLI, sweeps, evaluation, data loading and the run all read it. Adding a trainer is
one module under ``trainers/`` (its ``train(job)``), one config file (``configs/trainer/<name>.yaml``) and one entry
in ``SPECS`` below: docs/architecture.md says how.

Light module: standard library only (it is read before anything heavy is imported).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, FrozenSet, Mapping, Optional, Tuple

# ----------------------------------------------------------------------------------------------- key sets
# The config keys a run reads, in the sections where what is read depends on the trainer (model, data, training,
# peft, trainer). The other sections (features, launcher, output_dir, ...) are read by the run for every trainer.
TRAINER_SCOPED = ("model.", "data.", "training.", "peft.", "trainer.")

MODEL = frozenset({"model.name", "model.revision", "model.trust_remote_code", "model.allow_pickle_weights"})
DATA = frozenset({"data.path", "data.train_split", "data.valid_split", "data.valid_path", "data.valid_fraction",
                  "data.max_samples", "data.text_column"})
PAIRS = frozenset({"data.prompt_text_column", "data.rejected_text_column"})
# what every training loop reads: ours (ppo) and transformers' Trainer alike
TRAINING = frozenset({
    "training.lr", "training.epochs", "training.batch_size", "training.gradient_accumulation", "training.optimizer",
    "training.scheduler", "training.warmup_ratio", "training.weight_decay", "training.seed",
    "training.mixed_precision", "training.block_size", "training.max_steps", "training.eval_batch_size",
    "training.logging_steps", "training.max_grad_norm", "training.gradient_checkpointing",
    "training.attn_implementation", "training.save_steps", "training.save_total_limit",
    "training.resume_from_checkpoint",
})
# keys a resume may change: how long to train, how often to log, evaluate and save, and how (not what) to compute;
# every other key a trainer reads shapes the training a checkpoint continues (schema.recipe); the safety switches
# (pickle weights, remote code) shape nothing
RESUME_MAY_CHANGE = frozenset({
    "training.max_steps", "training.epochs", "training.save_steps", "training.save_total_limit",
    "training.logging_steps", "training.eval_steps", "training.eval_strategy", "training.eval_batch_size",
    "training.resume_from_checkpoint", "training.gradient_checkpointing", "training.attn_implementation",
    "training.torch_compile", "training.use_liger_kernel", "data.valid_path", "data.valid_split",
    "peft.merge_adapter", "model.allow_pickle_weights", "model.trust_remote_code",
    "training.padding_free",  # how the loss is computed, not what it is (checkpoints from before it resume)
})
# what transformers' Trainer honours on top (periodic evaluation, torch.compile, Liger kernels)
TRAINER_LOOP = frozenset({"training.eval_strategy", "training.eval_steps", "training.torch_compile",
                          "training.use_liger_kernel"})
PACKING = frozenset({"training.packing"})
PADDING_FREE = frozenset({"training.padding_free"})  # the trainers whose batches can be padding-free
# attention that keeps to each sequence of a packed row without a mask over the whole row (training.attn_implementation
# auto picks one); with sdpa or eager a packed row attends through a (row x row) block-diagonal mask instead
PACKED_ATTENTION = frozenset({"auto", "varlen_sdpa", "flash_attention_2", "flash_attention_3", "flex_attention"})
LORA = frozenset({"peft.method", "peft.bits", "peft.lora_r", "peft.lora_alpha", "peft.lora_dropout", "peft.target_modules"})
MERGE = frozenset({"peft.merge_adapter"})
SFT = frozenset({"trainer.chat_template", "trainer.add_eos_token", "trainer.max_seq_length"})
PREFERENCE_LIMITS = frozenset({"trainer.max_prompt_length", "trainer.max_completion_length"})
RL = frozenset({"trainer.rl.reward_model_path", "trainer.rl.gamma", "trainer.rl.gae_lambda", "trainer.rl.kl_coef",
                "trainer.rl.value_loss_coef", "trainer.rl.clip_range", "trainer.rl.num_ppo_epochs",
                "trainer.rl.chunk_size", "trainer.rl.mini_batch_size", "trainer.rl.max_new_tokens",
                "trainer.rl.temperature", "trainer.rl.stop_on_eos"})
# GRPO's own keys (TRL's names), under trainer.grpo so that the guide's --rl-* stay "only for PPO"
GRPO = frozenset({"trainer.grpo.reward_funcs", "trainer.grpo.reward_model_path", "trainer.grpo.reward_weights",
                  "trainer.grpo.num_generations", "trainer.grpo.max_prompt_length",
                  "trainer.grpo.max_completion_length", "trainer.grpo.temperature", "trainer.grpo.beta",
                  "trainer.grpo.epsilon", "trainer.grpo.loss_type", "trainer.grpo.num_iterations",
                  "trainer.grpo.use_vllm"})
KTO = frozenset({"trainer.kto.beta", "trainer.kto.desirable_weight", "trainer.kto.undesirable_weight"})

# Required by every trainer (the guide's "Required Parameters" common to all six).
CORE_REQUIRED = ("model.name", "data.path", "training.lr", "training.epochs", "training.batch_size")

# ----------------------------------------------------------------------------------------------- metrics
# metrics.json keys every trainer writes (the objective is the eval loss with eval data, else the final train loss)
COMMON_METRICS = frozenset({"train_loss", "first_train_loss"})
LOSS_LOOP_METRICS = frozenset({"train_loss_mean"})

# Enhanced-evaluation metrics (features=[eval]); text metrics need a generator and reference answers.
TEXT_METRICS = ("perplexity", "bleu", "rouge", "bertscore", "chrf", "exact_match")
SCORER_METRICS = ("accuracy", "reward_margin")
POLICY_METRICS = ("mean_reward",)
# the metrics.json keys (eval/<name>) an enhanced-evaluation metric writes
EVAL_METRIC_KEYS: Dict[str, Tuple[str, ...]] = {
    "rouge": ("rouge1", "rouge2", "rougeL", "rougeLsum"),
    "bertscore": ("bertscore_precision", "bertscore_recall", "bertscore_f1"),
}

# Evaluation metrics a trainer measures itself (a policy's, during its run): eval.metrics name → its metrics.json key.
MEASURED_BY_TRAINER: Dict[str, str] = {"mean_reward": "eval_mean_reward_after"}

# Whether a larger value of a metric is better: the default sweep.direction of a metric (by its name's last part).
MAXIMIZED = ("accuracy", "accuracies", "reward", "margin", "margins", "bleu", "chrf", "rouge", "bertscore",
             "exact_match", "acc")
MINIMIZED = ("loss", "perplexity", "kl")


def metric_direction(metric: str) -> Optional[str]:
    """``maximize``/``minimize`` for a metric whose name says which is better, else None."""
    name = metric.rsplit("/", 1)[-1].lower()
    if any(w in name for w in MINIMIZED):
        return "minimize"
    if any(w in name for w in MAXIMIZED):
        return "maximize"
    return None


LR_SPACE = "tag(log, interval(1e-5, 1e-2))"
LORA_SPACE = {"peft.lora_r": "choice(8, 16, 32, 64)"}


# ----------------------------------------------------------------------------------------------- the spec
@dataclass(frozen=True)
class TrainerSpec:
    name: str  # trainer=<name>; configs/trainer/<name>.yaml
    label: str  # in messages: "DPO trainer"
    summary: str  # one line for --help
    data_shape: str  # text | chat | preference | prompts | feedback: the built-in sample (configs/data/<shape>.yaml)
    module: str  # the module whose train(job) trains, saves the model into job.output_dir and returns its metrics
    reads: FrozenSet[str]  # config keys (TRAINER_SCOPED sections) its run reads; the rest are warned about
    requires: Tuple[str, ...] = CORE_REQUIRED  # keys that must be set (not null)
    metrics: FrozenSet[str] = COMMON_METRICS | LOSS_LOOP_METRICS  # metrics.json keys of every run
    eval_data_metrics: FrozenSet[str] = frozenset({"eval_loss"})  # ... and those of a run with eval data
    always_evaluates: bool = False  # eval_data_metrics are reported without eval data too (ppo: training prompts)
    eval_metrics: Tuple[str, ...] = TEXT_METRICS  # features=[eval] metrics it supports
    default_eval_metrics: Tuple[str, ...] = ("perplexity",)
    sweep_space: Mapping[str, str] = field(default_factory=lambda: {"training.lr": LR_SPACE})
    sweep_metric: str = "eval_loss"  # sweep.metric when not set
    text_column_fallbacks: Tuple[str, ...] = ()  # data.text_column left at "text" and absent: these, in order
    output: str = "causal_lm"  # causal_lm (a generator) | sequence_classifier (a scorer)
    evaluation: str = "generator"  # how features=[eval] measures it: generator (text metrics on its answers),
    # scorer (accuracy and margin on the eval pairs), policy (the trainer's mean reward on the eval prompts)
    distillation: str = "supported"  # supported | ignored (warning) | refused (error)
    launchable: bool = True  # can train in several processes (launcher=multiprocess | multinode)
    encoder_models: bool = False  # can train encoder-only models (bert, roberta)
    not_supported: str = ""  # how "X is not supported ..." names it: "with PPO trainer" (default), "for reward models"
    token_count: str = "no"  # the tokens trained on, counted by transformers' Trainer: all (padding-free batches),
    # non_padding (padded batches), no (batches with no input_ids to count: ORPO's, the reward model's; PPO counts none)
    sample_settings: Mapping[str, object] = field(default_factory=dict)  # keys the built-in sample comes with, set
    # (and said) when the data are the built-in sample and the user left the key at its default (grpo: its reward)
    sample_settings_unless: Mapping[str, Tuple[str, ...]] = field(default_factory=dict)  # ... and none of these
    # keys is set (grpo: the sample's reward function is not added beside a reward model the user chose)

    @property
    def unsupported_phrase(self) -> str:
        return self.not_supported or f"with {self.label} trainer"

    @property
    def generative(self) -> bool:
        return self.output == "causal_lm"

    def reported_metrics(self, has_eval_data: bool) -> FrozenSet[str]:
        if has_eval_data or self.always_evaluates:
            return self.metrics | self.eval_data_metrics
        return self.metrics


_LM = MODEL | DATA | TRAINING | TRAINER_LOOP | LORA | MERGE
_PREFERENCE_EVAL = frozenset({"eval_loss", "eval_logp_margin_before", "eval_logp_margin_after",
                              "eval_rewards/accuracies", "eval_rewards/margins"})

SPECS: Dict[str, TrainerSpec] = {s.name: s for s in (
    TrainerSpec(
        name="generic", label="Generic", summary="causal language modelling on plain text",
        data_shape="text", module="autotrain_hydra.trainers.generic", reads=_LM | PACKING | PADDING_FREE,
        token_count="all",
    ),
    TrainerSpec(
        name="sft", label="SFT", summary="supervised fine-tuning on chat messages through a chat template",
        data_shape="chat", module="autotrain_hydra.trainers.sft", reads=_LM | PACKING | PADDING_FREE | SFT,
        eval_data_metrics=frozenset({"eval_loss", "eval_mean_token_accuracy"}),
        text_column_fallbacks=("messages", "conversations"), token_count="all",
    ),
    TrainerSpec(
        name="dpo", label="DPO", summary="Direct Preference Optimization on preference pairs",
        data_shape="preference", module="autotrain_hydra.trainers.dpo",
        reads=_LM | PAIRS | PREFERENCE_LIMITS | PADDING_FREE | {"trainer.model_ref", "trainer.dpo_beta"},
        requires=CORE_REQUIRED + ("data.prompt_text_column", "data.rejected_text_column"),
        eval_data_metrics=_PREFERENCE_EVAL,
        sweep_space={"training.lr": "tag(log, interval(1e-6, 1e-2))", "trainer.dpo_beta": "interval(0.05, 0.5)"},
        text_column_fallbacks=("chosen",), token_count="non_padding",
    ),
    TrainerSpec(
        name="orpo", label="ORPO", summary="Odds Ratio Preference Optimization (reference-free) on preference pairs",
        data_shape="preference", module="autotrain_hydra.trainers.orpo",
        reads=_LM | PAIRS | PREFERENCE_LIMITS | PADDING_FREE | {"trainer.model_ref", "trainer.orpo_alpha"},
        requires=CORE_REQUIRED + ("data.prompt_text_column", "data.rejected_text_column"),
        eval_data_metrics=_PREFERENCE_EVAL,
        sweep_space={"training.lr": "tag(log, interval(1e-6, 1e-2))", "trainer.orpo_alpha": "interval(0.1, 2.0)"},
        text_column_fallbacks=("chosen",),
    ),
    TrainerSpec(
        name="reward", label="Reward", summary="a reward model: a sequence-classification scorer of responses",
        data_shape="preference", module="autotrain_hydra.trainers.reward",
        reads=MODEL | DATA | TRAINING | TRAINER_LOOP | LORA | PAIRS | PADDING_FREE
        | {"trainer.num_labels", "trainer.label_smoothing"},
        requires=CORE_REQUIRED + ("data.rejected_text_column",),
        eval_data_metrics=frozenset({"eval_loss", "eval_accuracy", "eval_margin", "eval_mean_reward"}),
        eval_metrics=SCORER_METRICS, default_eval_metrics=SCORER_METRICS,
        text_column_fallbacks=("chosen",), output="sequence_classifier", evaluation="scorer", distillation="ignored",
        encoder_models=True, not_supported="for reward models",
    ),
    TrainerSpec(
        name="ppo", label="PPO", summary="RLHF: Proximal Policy Optimization against a trained reward model",
        data_shape="prompts", module="autotrain_hydra.trainers.ppo",
        reads=MODEL | DATA | TRAINING | LORA | MERGE | {"data.prompt_text_column"} | RL,
        requires=CORE_REQUIRED + ("trainer.rl.reward_model_path",),
        metrics=COMMON_METRICS | {"mean_reward", "kl"},
        eval_data_metrics=frozenset({"eval_mean_reward_before", "eval_mean_reward_after"}), always_evaluates=True,
        eval_metrics=POLICY_METRICS, default_eval_metrics=POLICY_METRICS, evaluation="policy",
        sweep_space={"training.lr": LR_SPACE, "trainer.rl.kl_coef": "interval(0.01, 0.5)"},
        sweep_metric="eval_mean_reward_after", text_column_fallbacks=("prompt", "query"), distillation="refused",
        launchable=False,
    ),
    TrainerSpec(
        name="grpo", label="GRPO",
        summary="Group Relative Policy Optimization: RL from reward functions and/or a trained reward model",
        data_shape="prompts", module="autotrain_hydra.trainers.grpo",
        reads=_LM | {"data.prompt_text_column"} | GRPO,
        metrics=COMMON_METRICS | LOSS_LOOP_METRICS | {"mean_reward"},
        eval_data_metrics=frozenset({"eval_mean_reward_before", "eval_mean_reward_after"}), always_evaluates=True,
        eval_metrics=POLICY_METRICS, default_eval_metrics=POLICY_METRICS, evaluation="policy",
        sweep_space={"training.lr": LR_SPACE, "trainer.grpo.beta": "interval(0.0, 0.2)"},
        sweep_metric="eval_mean_reward_after", text_column_fallbacks=("prompt", "query"), distillation="refused",
        # the built-in prompts are arithmetic questions with short answers: a reward for answering with a number,
        # and completions of 16 tokens
        sample_settings={"trainer.grpo.reward_funcs": ("autotrain_hydra.rewards.has_number",),
                         "trainer.grpo.max_completion_length": 16},
        sample_settings_unless={"trainer.grpo.reward_funcs": ("trainer.grpo.reward_model_path",)},
    ),
    TrainerSpec(
        name="kto", label="KTO",
        summary="Kahneman-Tversky Optimization on unpaired feedback (a completion and whether it is desirable)",
        data_shape="feedback", module="autotrain_hydra.trainers.kto",
        reads=_LM | PAIRS | PADDING_FREE | {"data.label_column", "trainer.model_ref"} | KTO,
        requires=CORE_REQUIRED + ("data.prompt_text_column",),
        eval_data_metrics=frozenset({"eval_loss", "eval_logp_margin_before", "eval_logp_margin_after"}),
        sweep_space={"training.lr": "tag(log, interval(1e-6, 1e-2))", "trainer.kto.beta": "interval(0.05, 0.5)"},
        text_column_fallbacks=("completion", "chosen"), distillation="refused", token_count="non_padding",
    ),
)}

TRAINERS: Tuple[str, ...] = tuple(SPECS)
# the trainers of the trainer-parameter guide: its warnings name these (grpo and kto came later)
GUIDE_TRAINERS: FrozenSet[str] = frozenset({"generic", "sft", "dpo", "orpo", "reward", "ppo"})
DEFAULT_TRAINER = "sft"


def spec(name: str) -> TrainerSpec:
    return SPECS[name]


def is_trainer_scoped(key: str) -> bool:
    return key.startswith(TRAINER_SCOPED)


def applies_to(key: str) -> FrozenSet[str]:
    """The trainers whose run reads ``key`` (every trainer for keys outside the trainer-scoped sections)."""
    if not is_trainer_scoped(key):
        return frozenset(TRAINERS)
    return frozenset(t for t, s in SPECS.items() if key in s.reads)


def required_by(key: str) -> FrozenSet[str]:
    return frozenset(t for t, s in SPECS.items() if key in s.requires)


def label(trainers) -> str:
    """``DPO trainer``, ``DPO/ORPO trainers``: the guide's way of naming trainers in a message."""
    chosen = set(trainers)
    names = [s.label for t, s in SPECS.items() if t in chosen]
    return "/".join(names) + (" trainers" if len(names) > 1 else " trainer")


def with_feature(feature: str, mode: str) -> FrozenSet[str]:
    """The trainers where ``features=[<feature>]`` is ``supported``, ``ignored`` (a warning) or ``refused`` (an
    error): the spec's field named after the feature (``distillation``); a feature without one applies to every
    trainer."""
    return frozenset(t for t, s in SPECS.items() if getattr(s, feature, "supported") == mode)


def in_words(trainers) -> str:
    """``generic, sft, dpo and orpo``, in the registry's order."""
    names = [t for t in TRAINERS if t in trainers]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def eval_metric_trainers() -> Dict[str, FrozenSet[str]]:
    """Every enhanced-evaluation metric → the trainers it applies to."""
    out: Dict[str, set] = {}
    for t, s in SPECS.items():
        for m in s.eval_metrics:
            out.setdefault(m, set()).add(t)
    return {m: frozenset(v) for m, v in out.items()}


def eval_metric_keys(metric: str) -> Tuple[str, ...]:
    """The ``eval/<name>`` keys of metrics.json that an enhanced-evaluation metric writes."""
    return tuple(f"eval/{n}" for n in EVAL_METRIC_KEYS.get(metric, (metric,)))
