"""What every trainer shares: the job handed to it, TrainingArguments from our config, hardware checks, saving."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)

# transformers 5 removed its own AdamW ("adamw_hf"); torch's AdamW is the same algorithm.
OPTIM_NAMES = {"adamw_torch": "adamw_torch", "adamw_hf": "adamw_torch", "sgd": "sgd", "adafactor": "adafactor"}


class HardwareError(RuntimeError):
    """A setting this machine cannot run (fp16 without a GPU, ...)."""


@dataclass
class Job:
    cfg: DictConfig
    output_dir: str
    metrics: Dict[str, Any] = field(default_factory=dict)
    notes: List[str] = field(default_factory=list)


def precision_flags(mixed_precision: Optional[str]) -> Dict[str, bool]:
    """TrainingArguments fp16/bf16 for ``training.mixed_precision``, checked against this machine's hardware."""
    import torch

    cuda = torch.cuda.is_available()
    bf16_ok = cuda and torch.cuda.is_bf16_supported()
    if mixed_precision in (None, "auto"):
        return {"fp16": False, "bf16": bool(bf16_ok)}
    if mixed_precision == "fp16" and not cuda:
        raise HardwareError("training.mixed_precision=fp16 needs a CUDA GPU and this machine has none.\n"
                            "    fix: set training.mixed_precision=bf16 or fp32 on a CPU")
    if mixed_precision == "bf16" and cuda and not bf16_ok:
        raise HardwareError(f"training.mixed_precision=bf16: this GPU ({torch.cuda.get_device_name()}) has no bf16.\n"
                            "    fix: set training.mixed_precision=fp16 (or fp32)")
    return {"fp16": mixed_precision == "fp16", "bf16": mixed_precision == "bf16"}


def hardware_check(cfg: DictConfig) -> None:
    """Settings this machine cannot run, refused before any model is loaded."""
    import importlib.util

    import torch

    precision_flags(cfg.training.mixed_precision)
    t = cfg.training
    if t.use_liger_kernel and not (torch.cuda.is_available() and importlib.util.find_spec("liger_kernel")):
        raise HardwareError("training.use_liger_kernel=true needs a CUDA GPU and the liger-kernel package "
                            f"(GPU: {torch.cuda.is_available()}, liger-kernel installed: "
                            f"{importlib.util.find_spec('liger_kernel') is not None}).\n"
                            "    fix: pip install liger-kernel on a GPU machine, or set training.use_liger_kernel=false")
    if t.attn_implementation.startswith("flash_attention") and not (
            torch.cuda.is_available() and importlib.util.find_spec("flash_attn")):
        raise HardwareError(f"training.attn_implementation={t.attn_implementation} needs a CUDA GPU and the "
                            "flash-attn package.\n    fix: set training.attn_implementation=auto (sdpa on a CPU)")


def attn_implementation(cfg: DictConfig) -> str:
    """``training.attn_implementation``; ``auto``: when sft packs, a kernel that attends within each packed sequence
    only (GPU: flash-attention when installed, else flex attention; CPU: ``varlen_sdpa``, sdpa per sequence),
    else sdpa."""
    import importlib.util

    import torch

    value = cfg.training.attn_implementation
    if value != "auto":
        return value
    if cfg.trainer.name == "sft" and cfg.training.packing:
        if torch.cuda.is_available():
            return "flash_attention_2" if importlib.util.find_spec("flash_attn") else "flex_attention"
        return "varlen_sdpa"  # autotrain_hydra.attention: sdpa per packed sequence
    return "sdpa"


def optimizer_name(name: str) -> str:
    """Our ``training.optimizer`` → TrainingArguments ``optim``; AdamW runs fused on a GPU (one kernel for all
    parameters). On a CPU torch's fused AdamW measured slower than its default (benchmarks/bench_dpo.py: 0.90x)."""
    import torch

    optim = OPTIM_NAMES[name]
    return "adamw_torch_fused" if optim == "adamw_torch" and torch.cuda.is_available() else optim


def training_kwargs(job: Job, has_eval: bool) -> Dict[str, Any]:
    """Keyword arguments for TrainingArguments (or a TRL config) from our ``training`` node."""
    import torch

    t = job.cfg.training
    scheduler = t.scheduler
    if scheduler == "constant" and t.warmup_ratio > 0:
        scheduler = "constant_with_warmup"
    eval_strategy = t.eval_strategy if has_eval else "no"
    report_to = list(OmegaConf.to_container(job.cfg.report_to)) or "none"
    return dict(
        output_dir=os.path.join(job.output_dir, "checkpoints"),
        learning_rate=t.lr,
        num_train_epochs=t.epochs,
        max_steps=t.max_steps,
        per_device_train_batch_size=t.batch_size,
        per_device_eval_batch_size=t.eval_batch_size or t.batch_size,
        gradient_accumulation_steps=t.gradient_accumulation,
        optim=optimizer_name(t.optimizer),
        lr_scheduler_type=scheduler,
        warmup_steps=float(t.warmup_ratio) if t.warmup_ratio else 0,
        weight_decay=t.weight_decay,
        max_grad_norm=t.max_grad_norm,
        seed=t.seed,
        data_seed=t.seed,
        logging_steps=t.logging_steps,
        logging_first_step=True,
        eval_strategy=eval_strategy,
        eval_steps=t.eval_steps if eval_strategy == "steps" else None,
        save_strategy="no",
        activation_checkpointing=t.gradient_checkpointing,
        torch_compile=t.torch_compile,
        use_liger_kernel=t.use_liger_kernel,
        # real (non-padding) tokens trained on; the ORPO and reward batches have no input_ids to count
        include_num_input_tokens_seen="non_padding" if job.cfg.trainer.name in ("generic", "sft", "dpo") else "no",
        report_to=report_to,
        use_cpu=not torch.cuda.is_available(),
        disable_tqdm=True,
        **precision_flags(t.mixed_precision),
    )


def log_history_losses(log_history: List[Dict[str, Any]]) -> Dict[str, List]:
    train = [(e["step"], e["loss"]) for e in log_history if "loss" in e]
    evals = [(e["step"], e["eval_loss"]) for e in log_history if "eval_loss" in e]
    out = {"train": train, "eval": evals}
    distill = [(e["step"], e["distill_loss"]) for e in log_history if "distill_loss" in e]
    if distill:  # features=[distillation]: the teacher term alone (train is the weighted sum)
        out["distill"] = distill
    return out


def train_and_collect(job: Job, trainer: Any, has_eval: bool) -> Dict[str, Any]:
    """Train, evaluate (when there is eval data) and collect the metrics every trainer reports."""
    result = trainer.train()
    metrics: Dict[str, Any] = {
        "train_loss_mean": result.training_loss,
        "train_runtime_s": result.metrics.get("train_runtime"),
        "train_samples_per_second": result.metrics.get("train_samples_per_second"),
        "global_step": result.global_step,
    }
    losses = log_history_losses(trainer.state.log_history)
    tokens = getattr(trainer.state, "num_input_tokens_seen", 0)
    if tokens:
        metrics["train_tokens"] = int(tokens)
        if metrics["train_runtime_s"]:
            metrics["train_tokens_per_second"] = round(tokens / metrics["train_runtime_s"], 1)
    if losses["train"]:
        metrics["first_train_loss"] = losses["train"][0][1]
        metrics["train_loss"] = losses["train"][-1][1]
    else:
        metrics["train_loss"] = result.training_loss
    if has_eval:
        ev = trainer.evaluate()
        metrics.update({k: v for k, v in ev.items() if isinstance(v, (int, float))})
    metrics["history"] = losses
    return metrics


def remove_empty_checkpoints(out: str) -> None:
    """The trainer's checkpoint folder is left out of the output when no checkpoint was written."""
    checkpoints = os.path.join(out, "checkpoints")
    if os.path.isdir(checkpoints) and not os.listdir(checkpoints):
        os.rmdir(checkpoints)


def save_model(job: Job, model: Any, tokenizer: Any) -> None:
    """Save the model and tokenizer into the output dir (a LoRA model: the adapter, plus merged weights in
    ``merged/`` when ``peft.merge_adapter=true``)."""
    out = job.output_dir
    remove_empty_checkpoints(out)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    if job.cfg.peft.method == "lora" and job.cfg.peft.merge_adapter:
        merged = model.merge_and_unload()
        merged.save_pretrained(os.path.join(out, "merged"))
        tokenizer.save_pretrained(os.path.join(out, "merged"))
        job.notes.append("merged weights saved in merged/")
