"""trainer=kto: Kahneman-Tversky Optimization with TRL's KTOTrainer, on feedback that need not be paired.

Data, either:

- **unpaired feedback**: a prompt (``data.prompt_text_column``), a completion (``data.text_column``; left at ``text``,
  the data's ``completion`` column) and a boolean (``data.label_column``, default ``label``: true for a desirable
  completion, false for an undesirable one) per row — thumbs up / thumbs down;
- **preference pairs** (the columns of dpo: ``data.rejected_text_column`` set): each pair becomes a desirable row
  (prompt, chosen) and an undesirable one (prompt, rejected).

Text or chat messages alike (TRL renders messages with the chat template). The rows are shuffled once with
``training.seed`` and then read in order: KTO estimates its KL term from the completions of the other rows of each
batch (TRL's sequential sampling), so a batch holds two rows at least (checked before load). ``training.block_size``
caps prompt + completion. Batches are padding-free (``training.padding_free``, the default: each forward — the
completions, the KL term's mismatched completions — runs its sequences as one row, ``autotrain_hydra.padding_free``);
false: padded. ``trainer.kto.beta``, ``desirable_weight`` and ``undesirable_weight`` are TRL's (give the
rarer kind more weight when the kinds are unbalanced: TRL says so in the log). The reference model is as dpo's:
``trainer.model_ref``, else a frozen copy of the base model, or with LoRA the base model with the adapter disabled.

Reported, on held-out rows (the validation data): the log-probability margin — the mean log p(completion | prompt)
of the desirable completions minus that of the undesirable ones — before and after training
(``eval_logp_margin_before``/``_after``), and TRL's eval loss and rewards.
"""

from __future__ import annotations

import logging
import os
import random
from typing import Any, Dict, List, Optional

from autotrain_hydra import data as data_mod
from autotrain_hydra import models
from autotrain_hydra.trainers.common import (Job, attn_implementation, padding_free_batches, quantization, save_model,
                                             train_and_collect, trainer_class, training_kwargs)
from autotrain_hydra.trainers.preference import MARGIN_PAIRS, padding_free, reference_model

log = logging.getLogger(__name__)


def feedback_rows(job: Job, ds: Any, source: str) -> List[Dict[str, Any]]:
    """(prompt, completion, label) rows: unpaired feedback as it is, or each preference pair as two rows."""
    d = job.cfg.data
    prompt, completion = d.prompt_text_column, d.text_column
    if d.rejected_text_column:  # paired: chosen → desirable, rejected → undesirable
        data_mod.require_columns(ds, [prompt, completion, d.rejected_text_column], source,
                                 ["data.prompt_text_column", "data.text_column", "data.rejected_text_column"])
        rows = []
        for r in ds:
            rows.append({"prompt": r[prompt], "completion": r[completion], "label": True})
            rows.append({"prompt": r[prompt], "completion": r[d.rejected_text_column], "label": False})
        return rows
    data_mod.require_columns(ds, [prompt, completion], source, ["data.prompt_text_column", "data.text_column"])
    if d.label_column not in ds.column_names:
        raise data_mod.DataError(f"column {d.label_column!r} (data.label_column) not found in {source}; columns "
                                 f"there: {', '.join(ds.column_names)}.\n    fix: set data.label_column=<the boolean "
                                 "column>, or for preference pairs data.rejected_text_column=<the rejected column>")
    rows = []
    for r in ds:
        label = r[d.label_column]
        if not isinstance(label, bool):  # found by data.check_inputs before load; a dataset name is read here
            raise data_mod.DataError(f"data.label_column ({d.label_column!r}) of {source} holds "
                                     f"{type(label).__name__} {label!r}, not a boolean.\n    fix: give true "
                                     "(desirable) or false (undesirable) in every row")
        rows.append({"prompt": r[prompt], "completion": r[completion], "label": label})
    return rows


def load_feedback(job: Job) -> Dict[str, Any]:
    from datasets import Dataset

    cfg = job.cfg
    splits = data_mod.load_splits(cfg.data)
    train = feedback_rows(job, splits.train, splits.source)
    if len(train) < 2:
        raise data_mod.DataError(f"{splits.source} holds {len(train)} feedback row: KTO estimates its KL term from "
                                 "the other rows of a batch, and needs two at least.\n    fix: give more rows")
    random.Random(cfg.training.seed).shuffle(train)  # read in order (TRL): mixed once, with the seed
    desirable = sum(r["label"] for r in train)
    job.notes.append(f"{desirable} desirable and {len(train) - desirable} undesirable training rows"
                     + (" (from preference pairs)" if cfg.data.rejected_text_column else ""))
    if desirable in (0, len(train)):
        log.warning("every training row of %s is %s: KTO learns from both kinds (data.label_column=%s)",
                    splits.source, "desirable" if desirable else "undesirable", cfg.data.label_column)
    valid = feedback_rows(job, splits.valid, "the validation data") if splits.valid is not None else None
    return {"train": Dataset.from_list(train), "valid": Dataset.from_list(valid) if valid else None}


def logp_margin(job: Job, model: Any, tokenizer: Any, rows: Any) -> Optional[float]:
    """Mean log p(completion | prompt) of the desirable held-out rows minus that of the undesirable ones (up to 128
    of each kind); None when the held-out rows are of one kind only."""
    import torch

    half = MARGIN_PAIRS // 2  # up to 128 rows of each kind, whatever the order of the file
    good_rows = [i for i, label in enumerate(rows["label"]) if label][:half]
    bad_rows = [i for i, label in enumerate(rows["label"]) if not label][:half]
    rows = rows.select(good_rows + bad_rows)
    pairs = rows.rename_column("completion", "chosen").add_column("rejected", rows["completion"])
    cols = data_mod.PreferenceColumns("prompt", "chosen", "rejected")
    seqs = data_mod.preference_sequences(pairs.remove_columns(["label"]), tokenizer, cols, "the held-out rows")
    logps: List[float] = []
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for i in range(0, len(seqs), 16):
            b = seqs[i: i + 16]
            logps += models.sequence_logps(model, b["prompt_ids"], b["chosen_ids"], tokenizer.pad_token_id).tolist()
    model.train(was_training)
    good = [lp for lp, label in zip(logps, rows["label"]) if label]
    bad = [lp for lp, label in zip(logps, rows["label"]) if not label]
    if not good or not bad:
        return None
    return sum(good) / len(good) - sum(bad) / len(bad)


def train(job: Job) -> Dict[str, Any]:
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    from trl import KTOConfig, KTOTrainer

    cfg = job.cfg
    k = cfg.trainer.kto
    tokenizer = models.load_tokenizer(cfg.model)
    feedback = load_feedback(job)
    has_eval = feedback["valid"] is not None
    args = KTOConfig(**training_kwargs(job, has_eval=has_eval), beta=k.beta, desirable_weight=k.desirable_weight,
                     undesirable_weight=k.undesirable_weight, max_length=cfg.training.block_size,
                     train_sampling_strategy="sequential")
    flat = padding_free_batches(cfg)
    attn = attn_implementation(cfg, several_per_row=flat)
    model = models.load_causal_lm(cfg.model, attn_implementation=attn, quantization=quantization(cfg))
    margin_before = logp_margin(job, model, tokenizer, feedback["valid"]) if has_eval else None
    ref = reference_model(job, model, attn)
    trainer = trainer_class(KTOTrainer)(model=model, ref_model=ref, args=args, train_dataset=feedback["train"],
                                        eval_dataset=feedback["valid"], processing_class=tokenizer,
                                        peft_config=models.lora_config(cfg.peft, model))
    if flat:  # after TRL's own patch of the forward (its fused LM head)
        padding_free(trainer)
    metrics = train_and_collect(job, trainer, has_eval=has_eval)
    if has_eval and margin_before is not None:
        metrics["eval_logp_margin_before"] = margin_before
        metrics["eval_logp_margin_after"] = logp_margin(job, trainer.model, tokenizer, feedback["valid"])
    elif has_eval:
        job.notes.append("the held-out rows are of one kind only: no desirable/undesirable margin")
    metrics["train_rows"] = len(feedback["train"])
    save_model(job, trainer.model, tokenizer, trainer)
    return metrics
