"""trainer=orpo: Odds Ratio Preference Optimization with TRL's ORPOTrainer (``trl.experimental``).

``trainer.orpo_alpha`` weights the odds-ratio term (ORPOConfig.beta, λ in the paper): loss = NLL(chosen) − λ·log
σ(log-odds ratio). ORPO is reference-free: ``trainer.model_ref`` (the guide lists it) is not in the loss; with eval
data it is the model whose log-probability margin is reported as ``eval_logp_margin_reference``, beside the margin
before and after training, and the log says so. Pairs are tokenized and truncated as for DPO; batches are
padding-free as DPO's (``training.padding_free``; TRL's loss reads the logits where the padded forward put them). With
``features=[distillation]`` the teacher's term on the chosen responses is added to the ORPO loss (see
autotrain_hydra.features.distillation).
"""

from __future__ import annotations

import logging
from typing import Any, Dict

from autotrain_hydra import models
from autotrain_hydra.compat.trl import orpo_classes, pretokenized_orpo
from autotrain_hydra.features import distillation
from autotrain_hydra.schema.params import uses_lora
from autotrain_hydra.trainers.common import (Job, attn_implementation, padding_free_batches, quantization,
                                             trainer_class, training_kwargs)
from autotrain_hydra.trainers.preference import fit, load_pairs, margin_before, padding_free

log = logging.getLogger(__name__)




def reference_margin(job: Job, pairs, tokenizer) -> None:
    """``trainer.model_ref`` with ORPO: not in the loss (ORPO is reference-free); its log-probability margin on the
    eval pairs is measured (then the model is freed) so that the policy's can be compared with it."""
    cfg = job.cfg
    if pairs.valid is None:
        job.notes.append(f"trainer.model_ref={cfg.trainer.model_ref}: ORPO is reference-free and there is no eval "
                         "data to measure the reference's margin on: not loaded")
        return
    ref = models.load_causal_lm(cfg.model, key="trainer.model_ref", name=cfg.trainer.model_ref)
    margin_before(job, ref, pairs, tokenizer, key="eval_logp_margin_reference")
    del ref
    job.notes.append(f"trainer.model_ref={cfg.trainer.model_ref}: ORPO is reference-free (not in the loss); its "
                     "margin on the eval pairs is eval_logp_margin_reference")
    log.info(job.notes[-1])


def orpo_features(prompt, chosen, rejected, max_length):
    """ORPOTrainer's row format from our token ids; completions shortened so prompt + completion <= max_length."""
    room = max(0, max_length - len(prompt))
    row = {"prompt_input_ids": prompt, "prompt_attention_mask": [1] * len(prompt)}
    for name, completion in (("chosen", chosen[:room]), ("rejected", rejected[:room])):
        row[f"{name}_input_ids"] = prompt + completion
        row[f"{name}_attention_mask"] = [1] * (len(prompt) + len(completion))
        row[f"{name}_labels"] = [-100] * len(prompt) + completion
    return row


def train(job: Job) -> Dict[str, Any]:
    ORPOConfig, ORPOTrainer = orpo_classes()

    cfg = job.cfg
    tokenizer = models.load_tokenizer(cfg.model)
    pairs = load_pairs(job, tokenizer)
    flat = padding_free_batches(cfg)
    if flat and cfg.training.use_liger_kernel and not uses_lora(cfg.peft.method):
        flat = False  # Liger replaces the model's forward when training starts, over ours
        job.notes.append("training.use_liger_kernel: ORPO's batches are padded (Liger replaces the model's forward)")
        log.info(job.notes[-1])
    attn = attn_implementation(cfg, several_per_row=flat)
    distiller = distillation.setup(job, tokenizer, pairs.prompts, attn)
    model = models.load_causal_lm(cfg.model, attn_implementation=attn, quantization=quantization(cfg))
    margin_before(job, model, pairs, tokenizer)
    if cfg.trainer.model_ref:
        reference_margin(job, pairs, tokenizer)
    args = ORPOConfig(**training_kwargs(job, has_eval=pairs.valid is not None), beta=cfg.trainer.orpo_alpha,
                      max_length=cfg.training.block_size, remove_unused_columns=False)
    trainer_cls = distillation.distillation_trainer(trainer_class(pretokenized_orpo(ORPOTrainer, orpo_features)),
                                                    distiller, own="orpo")
    trainer = trainer_cls(model=model, args=args, train_dataset=pairs.train, eval_dataset=pairs.valid,
                          processing_class=tokenizer,
                          peft_config=models.lora_config(cfg.peft, model))
    if flat:  # after TRL's own patch of the forward (its fused LM head)
        padding_free(trainer)
    return fit(job, trainer, pairs, tokenizer)
