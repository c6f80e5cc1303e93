"""trainer=sft: supervised fine-tuning on chat ``messages`` (or plain text) with TRL's SFTTrainer.

Rows are rendered through the chat template (``trainer.chat_template``: a named template, a Jinja string or
file, or null for the tokenizer's own), EOS appended when ``trainer.add_eos_token``, tokenized here and handed
to SFTTrainer, which truncates them to ``trainer.max_seq_length`` (null: ``training.block_size``) and, with
``training.packing`` (the default), packs them best-fit into rows of that length, padding-free: position ids restart
at each sequence so that attention never crosses two of them (flash/flex attention on a GPU, a block-diagonal sdpa
mask on a CPU). With packing off, batches are grouped by length. With ``features=[distillation]`` the teacher's term is added to the loss (see
autotrain_hydra.features.distillation).
"""

from __future__ import annotations

import logging
import os
from typing import Any, Dict

from autotrain_hydra import data as data_mod
from autotrain_hydra import models
from autotrain_hydra.features import distillation
from autotrain_hydra.trainers.common import (Job, attn_implementation, save_model, train_and_collect,
                                             training_kwargs)

log = logging.getLogger(__name__)


def train(job: Job) -> Dict[str, Any]:
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    from trl import SFTConfig, SFTTrainer

    cfg = job.cfg
    splits = data_mod.load_text_splits(cfg.data, "sft")
    column = cfg.data.text_column

    tokenizer = models.load_tokenizer(cfg.model, cfg.trainer.chat_template)
    eos = cfg.trainer.add_eos_token
    train_ds = data_mod.sft_sequences(splits.train, tokenizer, column, eos, splits.source)
    valid_ds = (data_mod.sft_sequences(splits.valid, tokenizer, column, eos, "the validation data")
                if splits.valid is not None else None)

    distiller = distillation.setup(job, tokenizer,
                                   lambda: [distillation.prompt_of(v) for v in splits.train[column]])
    model = models.load_causal_lm(cfg.model, attn_implementation=attn_implementation(cfg))
    peft_config = models.lora_config(cfg.peft) if cfg.peft.method == "lora" else None
    max_length = cfg.trainer.max_seq_length or cfg.training.block_size
    too_long = sum(1 for ids in train_ds["input_ids"] if len(ids) > max_length)
    job.metrics["sequences_truncated"] = too_long
    if too_long:  # kept, cut to max_length (never dropped): said, so that it is never silent
        job.notes.append(f"{too_long} of {len(train_ds)} training sequences are longer than {max_length} tokens "
                         f"(trainer.max_seq_length, else training.block_size) and were truncated")
        log.warning(job.notes[-1])
    kwargs = training_kwargs(job, has_eval=valid_ds is not None)
    if not cfg.training.packing:  # batches of similar lengths: less padding
        kwargs["train_sampling_strategy"] = "group_by_length"
    args = SFTConfig(**kwargs, max_length=max_length, packing=cfg.training.packing, packing_strategy="bfd",
                     dataset_num_proc=None)
    trainer_cls = distillation.distillation_trainer(SFTTrainer, distiller, own="lm")
    trainer = trainer_cls(model=model, args=args, train_dataset=train_ds, eval_dataset=valid_ds,
                          processing_class=tokenizer, peft_config=peft_config)
    metrics = train_and_collect(job, trainer, has_eval=valid_ds is not None)
    metrics["train_sequences"] = len(train_ds)
    save_model(job, trainer.model, tokenizer, trainer)
    return metrics
