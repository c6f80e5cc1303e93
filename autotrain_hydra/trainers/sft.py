"""trainer=sft: supervised fine-tuning on chat ``messages`` (or plain text) with TRL's SFTTrainer.

Rows are rendered through the chat template (``trainer.chat_template``: a named template, a Jinja string or
file, or null for the tokenizer's own), EOS appended when ``trainer.add_eos_token``, tokenized and truncated here to
``trainer.max_seq_length`` (null: ``training.block_size``; a truncated row is counted and said), and handed to
SFTTrainer. One row is one example: ``training.batch_size`` rows make a batch, concatenated **padding-free** into one
row whose position ids restart at each sequence, so that attention never crosses two of them (flash/flex attention
on a GPU, ``varlen_sdpa`` on a CPU). With ``training.packing=true`` TRL packs the rows best-fit into rows of that
length instead (a packed row is an example). With ``features=[distillation]`` the teacher's term is added to the
loss (see autotrain_hydra.features.distillation).
"""

from __future__ import annotations

import logging
import os
from typing import Any, Dict

from autotrain_hydra import data as data_mod
from autotrain_hydra import models
from autotrain_hydra.features import distillation
from autotrain_hydra.trainers.common import (Job, attn_implementation, padding_free_batches, quantization, save_model,
                                             train_and_collect, trainer_class, training_kwargs)

log = logging.getLogger(__name__)


def train(job: Job) -> Dict[str, Any]:
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    from trl import SFTConfig, SFTTrainer

    cfg = job.cfg
    splits = data_mod.load_text_splits(cfg.data)
    column = cfg.data.text_column

    tokenizer = models.load_tokenizer(cfg.model, cfg.trainer.chat_template)
    eos, packing = cfg.trainer.add_eos_token, cfg.training.packing
    max_length = cfg.trainer.max_seq_length or cfg.training.block_size
    train_ds = data_mod.sft_sequences(splits.train, tokenizer, column, eos, splits.source)
    valid_ds = (data_mod.sft_sequences(splits.valid, tokenizer, column, eos, "the validation data")
                if splits.valid is not None else None)
    too_long = sum(1 for ids in train_ds["input_ids"] if len(ids) > max_length)
    job.metrics["sequences_truncated"] = too_long
    if too_long:  # kept, cut to max_length (never dropped): said, so that it is never silent
        job.notes.append(f"{too_long} of {len(train_ds)} training sequences are longer than {max_length} tokens "
                         f"(trainer.max_seq_length, else training.block_size) and were truncated")
        log.warning(job.notes[-1])
    train_ds, valid_ds = (data_mod.truncated(ds, max_length) for ds in (train_ds, valid_ds))

    padding_free = padding_free_batches(cfg) or packing  # TRL's packed rows are padding-free
    attn = attn_implementation(cfg, several_per_row=padding_free)
    distiller = distillation.setup(job, tokenizer,
                                   lambda: [data_mod.prompt_of(v) for v in splits.train[column]], attn)
    model = models.load_causal_lm(cfg.model, attn_implementation=attn, quantization=quantization(cfg))
    peft_config = models.lora_config(cfg.peft, model)
    args = SFTConfig(**training_kwargs(job, has_eval=valid_ds is not None), packing=packing, padding_free=padding_free,
                     packing_strategy="bfd", max_length=max_length if packing else None, dataset_num_proc=None)
    trainer_cls = distillation.distillation_trainer(trainer_class(SFTTrainer), distiller, own="lm")
    trainer = trainer_cls(model=model, args=args, train_dataset=train_ds, eval_dataset=valid_ds,
                          processing_class=tokenizer, peft_config=peft_config)
    metrics = train_and_collect(job, trainer, has_eval=valid_ds is not None)
    metrics["train_sequences"] = len(train_ds)
    save_model(job, trainer.model, tokenizer, trainer)
    return metrics
