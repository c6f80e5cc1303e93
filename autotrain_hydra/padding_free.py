"""Padding-free forward passes for the trainers whose library collates padded batches (TRL's DPO, ORPO and KTO
trainers; the reward trainer's scorer): the batch's real tokens go through the model as one row, position ids
restarting at each sequence (``varlen_sdpa`` on a CPU, flash/flex attention on a GPU keep attention inside each
sequence), and each per-token output is put back where the padded forward would have had it, so that the library's
loss reads the layout it expects. The padded tensors are still built by the library's collator (cheap, on the
CPU); no compute is spent on padding. The same numbers as the padded forward, within float tolerance
(tests/test_padding_free.py, and each trainer's packed/padded test).

``install(model)`` wraps ``model.forward`` (the outermost module the trainer calls: a PeftModel, or the model):
a call with a 2-D ``attention_mask`` runs packed; every other call (generation, a 1-row unpadded batch) is the model's
own. The wrapped forward accepts what the padded one did (``input_ids``, ``attention_mask``, ``labels``, TRL's
``fused_lm_head``, ...) and returns the same fields: ``logits`` of shape (batch, length, vocab), TRL's fused
``log_probs`` (and its other per-token fields) of shape (batch, length - 1).
"""

from __future__ import annotations

import types
from typing import Any, Tuple

import torch

PER_TOKEN_FIELDS = ("log_probs", "entropy", "log_sum_sq_probs", "mean_logits", "is_top1", "label_mask")


def pack(input_ids: torch.Tensor, attention_mask: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(ids (1, T), position ids (1, T), keep (batch, length) bool): the real tokens of each row, in order, and where
    they came from. A row's real tokens are contiguous (right or left padding)."""
    keep = attention_mask.bool()
    positions = (attention_mask.long().cumsum(dim=1) - 1)[keep]
    return input_ids[keep][None], positions[None], keep


def unpack(values: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """``values`` of the packed row (1, T, ...) back in the padded layout (batch, length, ...), zeros on padding
    (differentiable)."""
    flat = values[0]
    out = flat.new_zeros((*keep.shape, *flat.shape[1:]))
    out[keep] = flat
    return out


def _shifted(values: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """A per-token output of a shifted forward (1, T - 1): entry t is about token t + 1. Back in the padded shifted
    layout (batch, length - 1): entry (i, j) about token j + 1 of row i. The entry of a sequence's last token (about
    the next sequence's first) is dropped: its label is -100 (``_packed_labels``), and it falls on padding."""
    full = torch.cat([values, values.new_zeros((values.shape[0], 1, *values.shape[2:]))], dim=1)
    return unpack(full, keep)[:, :-1]


def _packed_labels(labels: torch.Tensor, keep: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """The labels of the packed row: each sequence's own, and -100 on each sequence's first token (which the padded
    forward never predicts: no token before it; packed, the previous sequence's last token would)."""
    packed = labels[keep][None].clone()
    packed[positions == 0] = -100
    return packed


def scores(model: Any, ids: torch.Tensor, positions: torch.Tensor, keep: torch.Tensor,
           input_ids: torch.Tensor) -> Any:
    """A sequence classifier's (a reward model's) output for the packed row: the backbone once over the row, the head
    on each sequence's last token that is not the pad token (where transformers' classifiers pool a padded row:
    ``(positions * (input_ids != pad)).argmax()``)."""
    from transformers.modeling_outputs import SequenceClassifierOutputWithPast

    base = model.get_base_model() if hasattr(model, "get_base_model") else model  # LoRA: injected in place
    hidden = getattr(base, base.base_model_prefix)(input_ids=ids, position_ids=positions,
                                                   use_cache=False).last_hidden_state[0]
    where = unpack(torch.arange(ids.shape[1], device=ids.device)[None], keep)  # padded (i, j) -> packed index
    real = keep & (input_ids != base.config.pad_token_id)
    last = (torch.arange(keep.shape[1], device=keep.device) * real).argmax(dim=-1)
    return SequenceClassifierOutputWithPast(logits=base.score(hidden[where[torch.arange(len(last)), last]]))


def can_score(model: Any) -> bool:
    """A classifier ``scores`` can run packed: a backbone under its ``base_model_prefix`` and a ``score`` head (the
    decoder classifiers: Llama, Qwen, Mistral, Gemma, ...)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return hasattr(base, "score") and hasattr(base, getattr(base, "base_model_prefix", "") or "-")


def install(model: Any, scorer: bool = False) -> Any:
    """Make ``model``'s calls with a padded batch run padding-free (see the module's doc); ``scorer``: a sequence
    classifier (``scores``). Returns the model; installed once (a second call does nothing)."""
    if model is None or getattr(model, "_padding_free", False):
        return model
    original = model.forward

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        if len(args) == 1 and "input_ids" not in kwargs:  # input_ids given by position (TRL's ORPO)
            kwargs, args = {**kwargs, "input_ids": args[0]}, ()
        input_ids, mask = kwargs.get("input_ids"), kwargs.get("attention_mask")
        if args or input_ids is None or mask is None or mask.dim() != 2 or "position_ids" in kwargs:
            return original(*args, **kwargs)
        ids, positions, keep = pack(input_ids, mask)
        if scorer:
            return scores(self, ids, positions, keep, input_ids)
        call = {**kwargs, "input_ids": ids, "position_ids": positions, "attention_mask": None}
        if kwargs.get("labels") is not None:
            call["labels"] = _packed_labels(kwargs["labels"], keep, positions)
        out = original(**call)
        if getattr(out, "logits", None) is not None and out.logits.dim() == 3 and out.logits.shape[1] == ids.shape[1]:
            out.logits = unpack(out.logits, keep)
        for field in PER_TOKEN_FIELDS:
            value = getattr(out, field, None)
            if isinstance(value, torch.Tensor) and value.dim() >= 2 and value.shape[1] == ids.shape[1] - 1:
                setattr(out, field, _shifted(value, keep))
        return out

    model.forward = types.MethodType(forward, model)
    model._padding_free = True
    return model
