"""Shared by the preference trainers (dpo, orpo, reward, kto): pair loading, the policy's log-probability margin,
the reference model."""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from typing import Any, Optional

from autotrain_hydra import data as data_mod
from autotrain_hydra import models
from autotrain_hydra.schema.params import uses_lora
from autotrain_hydra.trainers.common import Job, save_model, train_and_collect

log = logging.getLogger(__name__)

MARGIN_PAIRS = 256  # held-out pairs scored for the before/after log-probability margin


@dataclass
class Pairs:
    train: Any
    valid: Optional[Any]
    source: str
    raw_train: Any = None  # the rows as read (distillation's prompts)
    columns: Optional[data_mod.PreferenceColumns] = None

    def prompts(self) -> list:
        """Raw prompt of each training pair: the prompt column, else what chosen has before its answer."""
        if self.columns.prompt:
            return [data_mod.normalized(v) for v in self.raw_train[self.columns.prompt]]
        return [data_mod.prompt_of(v) for v in self.raw_train[self.columns.chosen]]


def load_pairs(job: Job, tokenizer: Any, truncate: bool = True) -> Pairs:
    """Load, check and tokenize the preference pairs; ``truncate`` applies max_prompt/completion_length."""
    cfg = job.cfg
    splits = data_mod.load_splits(cfg.data)
    cols = data_mod.PreferenceColumns.from_cfg(cfg.data)
    cols.require(splits.train, splits.source)
    if splits.valid is not None:
        cols.require(splits.valid, cfg.data.valid_path or f"split {cfg.data.valid_split} of {splits.source}")
    same = sum(1 for c, r in zip(splits.train[cols.chosen], splits.train[cols.rejected]) if c == r)
    if same:  # logged by data.check_inputs before anything loaded; a note of the run here
        job.notes.append(f"{same} of {len(splits.train)} training pairs have chosen equal to rejected: they teach no "
                         "preference")
    limits = dict(max_prompt_length=cfg.trainer.max_prompt_length,
                  max_completion_length=cfg.trainer.max_completion_length) if truncate else {}
    train = data_mod.preference_sequences(splits.train, tokenizer, cols, splits.source, **limits)
    valid = (data_mod.preference_sequences(splits.valid, tokenizer, cols, "the validation data", **limits)
             if splits.valid is not None else None)
    if truncate:
        counts = data_mod.truncation_counts(train)
        job.metrics.update(counts)
        if counts["prompts_truncated"] or counts["completions_truncated"]:
            job.notes.append(f"truncated {counts['prompts_truncated']} prompts to trainer.max_prompt_length="
                             f"{cfg.trainer.max_prompt_length} (from the left) and {counts['completions_truncated']} "
                             f"pairs to trainer.max_completion_length={cfg.trainer.max_completion_length} (right)")
            log.info(job.notes[-1])
    drop = ["prompt_truncated", "completion_truncated"]
    return Pairs(train.remove_columns(drop), valid.remove_columns(drop) if valid is not None else None, splits.source,
                 splits.train, cols)


def logp_margin(model: Any, pairs: Any, pad_id: int, batch_size: int = 16) -> float:
    """Mean log p(chosen | prompt) − log p(rejected | prompt) of the policy over (up to 256) pairs."""
    import torch

    pairs = pairs.select(range(min(len(pairs), MARGIN_PAIRS)))
    was_training = model.training
    model.eval()
    total = 0.0
    with torch.no_grad():
        for i in range(0, len(pairs), batch_size):
            b = pairs[i: i + batch_size]
            chosen = models.sequence_logps(model, b["prompt_ids"], b["chosen_ids"], pad_id)
            rejected = models.sequence_logps(model, b["prompt_ids"], b["rejected_ids"], pad_id)
            total += float((chosen - rejected).sum())
    model.train(was_training)
    return total / len(pairs)


def fit(job: Job, trainer: Any, pairs: Pairs, tokenizer: Any) -> dict:
    """Train a dpo/orpo trainer and report the held-out log-probability margin before and after."""
    has_eval = pairs.valid is not None
    metrics = train_and_collect(job, trainer, has_eval=has_eval)
    if has_eval:
        metrics["eval_logp_margin_after"] = logp_margin(trainer.model, pairs.valid, tokenizer.pad_token_id)
    save_model(job, trainer.model, tokenizer, trainer)
    return metrics


def margin_before(job: Job, model: Any, pairs: Pairs, tokenizer: Any, key: str = "eval_logp_margin_before") -> None:
    """The held-out log-probability margin of ``model`` (the policy before training, or the reference model)."""
    if pairs.valid is not None:
        job.metrics[key] = logp_margin(model, pairs.valid, tokenizer.pad_token_id)


def reference_model(job: Job, model: Any, attn_implementation: Optional[str] = None) -> Any:
    """``trainer.model_ref`` (with the policy's attention: padding-free batches need one that keeps to each
    sequence), else None under LoRA (TRL disables the adapter), else a frozen copy of the model."""
    cfg = job.cfg
    if cfg.trainer.model_ref:
        ref = models.load_causal_lm(cfg.model, key="trainer.model_ref", name=cfg.trainer.model_ref,
                                    attn_implementation=attn_implementation)
        job.notes.append(f"reference model: {cfg.trainer.model_ref}")
    elif uses_lora(cfg.peft.method):
        job.notes.append("reference model: the base model with the LoRA adapter disabled")
        return None
    else:
        ref = copy.deepcopy(model)
        job.notes.append("reference model: a frozen copy of the base model")
    ref.eval()
    ref.requires_grad_(False)
    return ref


def padding_free(trainer: Any) -> Any:
    """A TRL preference trainer (dpo, kto, orpo) whose policy and reference run their padded batches padding-free
    (``autotrain_hydra.padding_free``; how TRL calls them: ``compat.trl``). Called after the trainer is made: TRL's
    ``__init__`` replaces the forward (its fused LM head)."""
    from autotrain_hydra import padding_free as flat

    flat.install(trainer.model)
    flat.install(getattr(trainer, "ref_model", None))
    return trainer
