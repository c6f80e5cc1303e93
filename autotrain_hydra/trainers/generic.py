"""trainer=generic: plain causal language modelling on ``data.text_column``.

Texts are tokenized, EOS appended, concatenated and cut into ``training.block_size`` blocks; the model learns
next-token prediction on every token. Runs on transformers' Trainer. With ``features=[distillation]``
the teacher's term is added to that loss (see autotrain_hydra.features.distillation).
"""

from __future__ import annotations

from typing import Any, Dict

from autotrain_hydra import data as data_mod
from autotrain_hydra import models
from autotrain_hydra.features import distillation
from autotrain_hydra.trainers.common import (Job, attn_implementation, save_model, train_and_collect,
                                             training_kwargs)


def train(job: Job) -> Dict[str, Any]:
    from transformers import Trainer, TrainingArguments

    cfg = job.cfg
    splits = data_mod.load_text_splits(cfg.data, "generic")
    column = cfg.data.text_column

    tokenizer = models.load_tokenizer(cfg.model)
    train_ds = data_mod.lm_blocks(splits.train, tokenizer, column, cfg.training.block_size, splits.source)
    valid_ds = (data_mod.lm_blocks(splits.valid, tokenizer, column, cfg.training.block_size, "the validation data")
                if splits.valid is not None else None)

    distiller = distillation.setup(job, tokenizer, lambda: list(splits.train[column]))
    model = models.load_causal_lm(cfg.model, attn_implementation=attn_implementation(cfg))
    if cfg.peft.method == "lora":
        from peft import get_peft_model

        model = get_peft_model(model, models.lora_config(cfg.peft))
    args = TrainingArguments(**training_kwargs(job, has_eval=valid_ds is not None), remove_unused_columns=False)
    trainer_cls = distillation.distillation_trainer(Trainer, distiller, own="lm")
    trainer = trainer_cls(model=model, args=args, train_dataset=train_ds, eval_dataset=valid_ds,
                      data_collator=data_mod.PadCollator(tokenizer.pad_token_id), processing_class=tokenizer)
    metrics = train_and_collect(job, trainer, has_eval=valid_ds is not None)
    metrics["train_blocks"] = len(train_ds)
    save_model(job, trainer.model, tokenizer, trainer)
    return metrics
