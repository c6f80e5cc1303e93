"""trainer=generic: plain causal language modelling on ``data.text_column``.

Each text is tokenized with EOS appended and is one example (a text longer than ``training.block_size`` tokens
becomes several); ``training.batch_size`` examples make a batch, concatenated **padding-free** into one row (position
ids restart at each text, attention stays within it: flash/flex attention on a GPU, ``varlen_sdpa`` on a CPU). With
``training.packing=true`` the texts are instead concatenated and cut into blocks of ``training.block_size`` tokens,
and a block is an example. The model learns next-token prediction on every token. Runs on transformers' Trainer.
With ``features=[distillation]`` the teacher's term is added to that loss (see autotrain_hydra.features.distillation).
"""

from __future__ import annotations

from typing import Any, Dict

from autotrain_hydra import data as data_mod
from autotrain_hydra import models
from autotrain_hydra.features import distillation
from autotrain_hydra.schema.params import uses_lora
from autotrain_hydra.trainers.common import (Job, attn_implementation, padding_free_batches, quantization, save_model,
                                             train_and_collect, trainer_class, training_kwargs)


def train(job: Job) -> Dict[str, Any]:
    from transformers import Trainer, TrainingArguments

    cfg = job.cfg
    splits = data_mod.load_text_splits(cfg.data)
    column, block, packing = cfg.data.text_column, cfg.training.block_size, cfg.training.packing

    tokenizer = models.load_tokenizer(cfg.model)
    examples = data_mod.lm_blocks if packing else data_mod.lm_sequences
    train_ds = examples(splits.train, tokenizer, column, block, splits.source)
    valid_ds = examples(splits.valid, tokenizer, column, block, "the validation data") if splits.valid is not None \
        else None

    flat = padding_free_batches(cfg) and not packing  # padding-free batches; else padded (examples or blocks)
    attn = attn_implementation(cfg, several_per_row=flat)
    distiller = distillation.setup(job, tokenizer, lambda: list(splits.train[column]), attn)
    model = models.load_causal_lm(cfg.model, attn_implementation=attn, quantization=quantization(cfg))
    if uses_lora(cfg.peft.method):
        from peft import get_peft_model

        model = get_peft_model(model, models.lora_config(cfg.peft, model))
    args = TrainingArguments(**training_kwargs(job, has_eval=valid_ds is not None), remove_unused_columns=False)
    collator = data_mod.FlatCollator() if flat else data_mod.PadCollator(tokenizer.pad_token_id)
    trainer_cls = distillation.distillation_trainer(trainer_class(Trainer), distiller, own="lm")
    trainer = trainer_cls(model=model, args=args, train_dataset=train_ds, eval_dataset=valid_ds,
                          data_collator=collator, processing_class=tokenizer)
    metrics = train_and_collect(job, trainer, has_eval=valid_ds is not None)
    metrics["train_blocks" if packing else "train_examples"] = len(train_ds)
    save_model(job, trainer.model, tokenizer, trainer)
    return metrics
