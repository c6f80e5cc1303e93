"""Padding-free forward passes for the trainers whose library collates padded batches (TRL's DPO, ORPO and KTO
trainers; the reward trainer's scorer): the batch's real tokens go through the model as one row, position ids
restarting at each sequence (``varlen_sdpa`` on a CPU, flash/flex attention on a GPU keep attention inside each
sequence), and each per-token output is put back where the padded forward would have had it, so that the library's
loss reads the layout it expects. The padded tensors are still built by the library's collator (cheap, on the
CPU); no compute is spent on padding. The same numbers as the padded forward, within float tolerance
(tests/test_padding_free.py, and each trainer's packed/padded test).

``install(model)`` wraps ``model.forward`` (the outermost module the trainer calls: a PeftModel, or the model):
a call with a padded batch (``input_ids`` and a 2-D ``attention_mask``, no cache, no position ids) runs packed, with
no cache; every other call (generation's prefill and decoding, a call with position ids) is the model's own. The
wrapped forward accepts what the padded one did (``input_ids``, ``attention_mask``, ``labels``, TRL's
``fused_lm_head``, ...) and returns the same fields: ``logits`` of shape (batch, length, vocab), TRL's fused
``log_probs`` (and its other per-token fields) of shape (batch, length - 1).
"""

from __future__ import annotations

import inspect
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
    pad = base.config.get_text_config().pad_token_id
    if pad is None and keep.shape[0] > 1:
        raise ValueError("a batch of several sequences needs the model's config.pad_token_id to find their ends")
    hidden = getattr(base, base.base_model_prefix)(input_ids=ids, position_ids=positions,
                                                   use_cache=False).last_hidden_state[0]
    where = unpack(torch.arange(ids.shape[1], device=ids.device)[None], keep)  # padded (i, j) -> packed index
    real = keep & (input_ids != pad) if pad is not None else keep
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
        if not _packable(args, kwargs):
            return original(*args, **kwargs)
        input_ids = kwargs["input_ids"]
        ids, positions, keep = pack(input_ids, kwargs["attention_mask"])
        if scorer:
            return scores(self, ids, positions, keep, input_ids)
        # no cache: transformers finds the sequences of a packed row by their position ids only without one
        call = {**kwargs, "input_ids": ids, "position_ids": positions, "attention_mask": None, "use_cache": False}
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

    own = inspect.signature(original)  # generate() and the Trainer's column filter see the model's own parameters
    forward.__signature__ = own.replace(parameters=[inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD),
                                                    *own.parameters.values()])
    model.forward = types.MethodType(forward, model)
    model._padding_free = True
    return model


def _packable(args: tuple, kwargs: dict) -> bool:
    """A training or scoring forward of a padded batch: ``input_ids`` and a 2-D ``attention_mask`` of the same shape,
    no position ids, no cache (generation: prefill and decoding are the model's own), no other per-token input."""
    input_ids, mask = kwargs.get("input_ids"), kwargs.get("attention_mask")
    if args or input_ids is None or mask is None or mask.dim() != 2 or input_ids.shape != mask.shape:
        return False
    if "position_ids" in kwargs or kwargs.get("past_key_values") is not None or kwargs.get("use_cache"):
        return False
    per_token = [k for k, v in kwargs.items() if k not in ("input_ids", "attention_mask", "labels")
                 and isinstance(v, torch.Tensor) and v.shape[:2] == mask.shape]
    return not per_token  # token_type_ids and the like: left as they are
