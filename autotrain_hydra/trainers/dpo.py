"""trainer=dpo: Direct Preference Optimization with TRL's DPOTrainer.

``trainer.dpo_beta`` is DPO's β. The reference model is ``trainer.model_ref`` when set; otherwise a frozen copy of
the base model, or, with LoRA, the base model itself with the adapter disabled (no second copy in memory). TRL
1.16's DPOConfig has no prompt/completion limits, so pairs are tokenized and truncated here (the prompt keeps its
last ``trainer.max_prompt_length`` tokens, each completion its first ``trainer.max_completion_length``);
``training.block_size`` caps prompt + completion. Batches are **padding-free** (``training.padding_free``, the
default; TRL 1.16's own is disabled): the chosen and rejected sequences of the batch's pairs run as one row
(``autotrain_hydra.padding_free``), TRL's loss reading each sequence's log-probabilities where the padded forward
would have put them; with ``training.padding_free=false``, padded batches (the same batches: TRL's sampling).
With ``features=[distillation]`` the teacher's term on the chosen responses is added to the DPO loss (see
autotrain_hydra.features.distillation).
"""

from __future__ import annotations

import os
from typing import Any, Dict

from autotrain_hydra import models
from autotrain_hydra.features import distillation
from autotrain_hydra.trainers.common import (Job, attn_implementation, padding_free_batches, quantization,
                                             trainer_class, training_kwargs)
from autotrain_hydra.trainers.preference import fit, load_pairs, margin_before, padding_free, reference_model


def train(job: Job) -> Dict[str, Any]:
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    from trl import DPOConfig, DPOTrainer

    from autotrain_hydra.compat.trl import pretokenized_dpo

    cfg = job.cfg
    tokenizer = models.load_tokenizer(cfg.model)
    pairs = load_pairs(job, tokenizer)
    flat = padding_free_batches(cfg)
    attn = attn_implementation(cfg, several_per_row=flat)
    distiller = distillation.setup(job, tokenizer, pairs.prompts, attn)
    model = models.load_causal_lm(cfg.model, attn_implementation=attn, quantization=quantization(cfg))
    margin_before(job, model, pairs, tokenizer)
    ref = reference_model(job, model, attn)
    if cfg.trainer.model_ref and ref is not None:
        margin_before(job, ref, pairs, tokenizer, key="eval_logp_margin_reference")
    # TRL's own sampling either way: the same batches padded or padding-free (a resume may switch between them)
    args = DPOConfig(**training_kwargs(job, has_eval=pairs.valid is not None), beta=cfg.trainer.dpo_beta,
                     max_length=cfg.training.block_size)
    trainer_cls = distillation.distillation_trainer(trainer_class(pretokenized_dpo(DPOTrainer)), distiller, own="dpo")
    trainer = trainer_cls(model=model, ref_model=ref, args=args, train_dataset=pairs.train,
                          eval_dataset=pairs.valid, processing_class=tokenizer,
                          peft_config=models.lora_config(cfg.peft, model))
    if flat:  # after TRL's own patch of the forward (its fused LM head)
        padding_free(trainer)
    return fit(job, trainer, pairs, tokenizer)
