"""trainer=reward: a reward model (AutoModelForSequenceClassification scorer, never a generator) with TRL's
RewardTrainer and our pairwise loss.

Each text is prompt + response; the scorer gives it ``trainer.num_labels`` scores. ``num_labels`` = K > 1 means
K reward heads on one backbone, an ensemble: every head is trained with the pairwise loss on the same preference
and the reward is the mean of the heads (their spread is a measure of the scorer's uncertainty).
``trainer.label_smoothing`` = ε is the probability that a preference label is wrong (conservative pairwise loss):
loss = −(1−ε)·log σ(r_chosen − r_rejected) − ε·log σ(r_rejected − r_chosen). Pairwise accuracy (how often the
chosen response scores higher) and the mean reward margin are reported. The saved directory is a full scorer
(with LoRA: the adapter is merged, and kept in ``adapter/``) that AutoModelForSequenceClassification loads and
``trainer.rl.reward_model_path`` takes.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Dict

from autotrain_hydra import data as data_mod
from autotrain_hydra import models, padding_free
from autotrain_hydra.compat.trl import record_metric
from autotrain_hydra.schema.params import uses_lora
from autotrain_hydra.trainers.common import (Job, attn_implementation, merged_model, padding_free_batches, quantization,
                                             save_output, train_and_collect, trainer_class, training_kwargs)
from autotrain_hydra.trainers.preference import load_pairs

log = logging.getLogger(__name__)


def pairwise_loss(chosen, rejected, label_smoothing: float = 0.0):
    """Mean conservative pairwise loss over heads and pairs; ``chosen``/``rejected`` are (batch, heads) scores."""
    import torch.nn.functional as F

    diff = chosen - rejected
    loss = -(1 - label_smoothing) * F.logsigmoid(diff) - label_smoothing * F.logsigmoid(-diff)
    return loss.mean()


def train(job: Job) -> Dict[str, Any]:
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    import torch
    from trl import RewardConfig, RewardTrainer

    cfg = job.cfg
    smoothing = float(cfg.trainer.label_smoothing)

    class PairwiseRewardTrainer(RewardTrainer):
        """RewardTrainer with label smoothing and several heads (TRL's loss has neither)."""

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            mode = "train" if self.model.training else "eval"
            inputs["use_cache"] = False
            outputs = model(**inputs)
            chosen, rejected = torch.chunk(outputs.logits.float(), chunks=2)  # (batch, heads) each
            loss = pairwise_loss(chosen, rejected, smoothing)
            with torch.no_grad():
                r_c, r_r = chosen.mean(-1), rejected.mean(-1)
                gather = self.accelerator.gather_for_metrics
                record_metric(self, mode, "accuracy", gather((r_c > r_r).float().mean()).mean().item())
                record_metric(self, mode, "margin", gather((r_c - r_r).mean()).mean().item())
                record_metric(self, mode, "mean_reward", gather(torch.cat([r_c, r_r]).mean()).mean().item())
            return (loss, outputs) if return_outputs else loss

    tokenizer = models.load_tokenizer(cfg.model)
    pairs = load_pairs(job, tokenizer, truncate=False)  # max_prompt/completion_length are DPO/ORPO keys
    block = cfg.training.block_size

    def to_scorer(row):
        return {"chosen_ids": data_mod.scorer_inputs(row["prompt_ids"], row["chosen_ids"], block),
                "rejected_ids": data_mod.scorer_inputs(row["prompt_ids"], row["rejected_ids"], block)}

    train_ds = pairs.train.map(to_scorer, remove_columns=["prompt_ids"])
    valid_ds = pairs.valid.map(to_scorer, remove_columns=["prompt_ids"]) if pairs.valid is not None else None
    flat = padding_free_batches(cfg)
    model = models.load_sequence_classifier(cfg.model, num_labels=cfg.trainer.num_labels, quantization=quantization(cfg),
                                            attn_implementation=attn_implementation(cfg, several_per_row=flat))
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    peft_config = models.lora_config(cfg.peft, model, task_type="SEQ_CLS")
    args = RewardConfig(**training_kwargs(job, has_eval=valid_ds is not None), max_length=None)
    heads = model.config.num_labels
    model.config.num_labels = 1  # TRL refuses K heads; our compute_loss handles them (the head itself is unchanged)
    try:
        trainer = trainer_class(PairwiseRewardTrainer)(model=model, args=args, train_dataset=train_ds,
                                                       eval_dataset=valid_ds, processing_class=tokenizer,
                                                       peft_config=peft_config)
    finally:
        model.config.num_labels = heads
    if flat and padding_free.can_score(trainer.model):  # the pairs' sequences as one row, each scored at its end
        padding_free.install(trainer.model, scorer=True)
    elif flat:
        job.notes.append(f"training.padding_free: {type(model).__name__} has no score head on a backbone to run "
                         "packed: padded batches")
        log.info(job.notes[-1])
    metrics = train_and_collect(job, trainer, has_eval=valid_ds is not None)
    save_scorer(job, trainer.model, tokenizer, trainer)
    return metrics


def save_scorer(job: Job, model: Any, tokenizer: Any, trainer: Any = None) -> None:
    """Always a full sequence classifier in the output dir (merged when trained with LoRA)."""

    def write(tmp: str, model: Any, state_dict: Any) -> None:
        if uses_lora(job.cfg.peft.method):
            model.save_pretrained(os.path.join(tmp, "adapter"))
            model = merged_model(job, model, num_labels=model.config.num_labels)
            job.notes.append("LoRA adapter merged into the saved scorer; the adapter alone is in adapter/")
        models.save_for_serving(model, tokenizer, tmp, state_dict)

    save_output(job, model, trainer, write)
