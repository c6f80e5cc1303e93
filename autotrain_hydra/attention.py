"""``varlen_sdpa``: attention for packed (padding-free) batches without a flash-attention or flex kernel.

A packed row holds several sequences, their position ids restarting at 0. sdpa given that row builds a
block-diagonal mask over the whole row and computes attention for every pair of tokens in it (the cost of the
row's length squared, most of it masked away). This function instead runs causal sdpa on each sequence of the row
(``is_causal``, no mask: torch's fused CPU/GPU kernels), so attention costs the sum of the squared sequence
lengths, as flash-attention's varlen kernel does. Rows that are not packed go to plain sdpa with their mask.

On a CPU the per-sequence kernels are called directly (``compat.torch``) from one autograd function that writes each
sequence's output and gradients in place: sdpa on slices of the input gets each sequence's gradient back from
autograd as a zero-filled tensor of the whole input, and sums them (``benchmarks/bench_attention.py`` measures the
two; docs/benchmarks.md has the figures). That path is taken where the kernels apply as sdpa would take them: float32
or bfloat16, one head size for query, key and value, each head's vector contiguous, no dropout, and no sequence
longer than a sliding window; otherwise sdpa runs on each sequence (``per_sequence_sdpa``).

Registered with transformers' AttentionInterface and AttentionMaskInterface under ``varlen_sdpa`` on import.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

from autotrain_hydra.compat import torch as torch_compat

NAME = "varlen_sdpa"


def segments(position_ids: torch.Tensor) -> list:
    """[(start, end), ...] of the sequences packed in one row (a new one wherever the position restarts at 0)."""
    starts = (position_ids == 0).nonzero().flatten().tolist()
    if not starts or starts[0] != 0:
        starts = [0] + starts
    return list(zip(starts, starts[1:] + [int(position_ids.shape[-1])]))


class _CausalPerSequence(torch.autograd.Function):
    """Causal attention on each span ``(row, start, end)`` of ``query``/``key``/``value`` (B, H, T, D), the spans
    covering every position, through the CPU's flash-attention kernels; each span's output and gradients are written
    into their own place. The output is (B, T, H, D), the layout the attention's output projection reads."""

    @staticmethod
    def forward(ctx, query, key, value, spans, scale):
        out = query.new_empty(query.shape[0], query.shape[2], query.shape[1], query.shape[3])
        lse = query.new_empty(query.shape[:3], dtype=torch.float32)
        for b, s, e in spans:
            o, lse[b:b + 1, :, s:e] = torch_compat.flash_attention_cpu(
                query[b:b + 1, :, s:e], key[b:b + 1, :, s:e], value[b:b + 1, :, s:e], True, scale)
            out[b:b + 1, s:e] = o.transpose(1, 2)
        ctx.save_for_backward(query, key, value, out, lse)
        ctx.spans, ctx.scale = spans, scale
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out):
        query, key, value, out, lse = ctx.saved_tensors
        grads = [torch.empty_like(x.transpose(1, 2), memory_format=torch.contiguous_format).transpose(1, 2)
                 for x in (query, key, value)]
        for b, s, e in ctx.spans:
            parts = torch_compat.flash_attention_cpu_backward(
                grad_out[b:b + 1, s:e].transpose(1, 2), query[b:b + 1, :, s:e], key[b:b + 1, :, s:e],
                value[b:b + 1, :, s:e], out[b:b + 1, s:e].transpose(1, 2), lse[b:b + 1, :, s:e], True, ctx.scale)
            for grad, part in zip(grads, parts):
                grad[b:b + 1, :, s:e] = part
        return (*grads, None, None)


def _autocast_dtype(x: torch.Tensor) -> torch.dtype:
    """The dtype sdpa computes ``x`` in: in CPU autocast (bf16 mixed precision) a floating input other than float64
    in autocast's dtype, else its own."""
    if torch.is_autocast_enabled("cpu") and x.is_floating_point() and x.dtype != torch.float64:
        return torch.get_autocast_dtype("cpu")
    return x.dtype


def _cpu_kernels_apply(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> bool:
    """Whether the CPU's flash-attention kernels take these inputs as they are (sdpa checks the same before it
    picks them): a CPU, float32 or bfloat16 (in autocast: its dtype), one head size, each head's vector contiguous."""
    dtypes = {_autocast_dtype(x) for x in (query, key, value)}
    return (query.device.type == "cpu" and dtypes <= {torch.float32, torch.bfloat16} and len(dtypes) == 1
            and query.shape[-1] == key.shape[-1] == value.shape[-1]
            and all(x.stride(-1) == 1 for x in (query, key, value)))


def per_sequence_sdpa(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, rows: list, scaling, dropout,
                      window) -> torch.Tensor:
    """Causal sdpa on each sequence of ``rows`` ([[(start, end), ...] per row]), within ``window`` where a sequence
    is longer than it; (B, T, H, D)."""
    gqa = query.shape[1] != key.shape[1]
    out = []
    for b, row in enumerate(rows):
        parts = []
        for s, e in row:
            causal = {"is_causal": True}
            if window and e - s > window:  # a sequence longer than the window: causal within the window
                i = torch.arange(e - s, device=query.device)
                causal = {"attn_mask": (i[None, :] <= i[:, None]) & (i[:, None] - i[None, :] < window)}
            parts.append(F.scaled_dot_product_attention(query[b:b + 1, :, s:e], key[b:b + 1, :, s:e],
                                                        value[b:b + 1, :, s:e], scale=scaling, enable_gqa=gqa,
                                                        dropout_p=dropout, **causal))
        out.append(torch.cat(parts, dim=2))
    return torch.cat(out, dim=0).transpose(1, 2).contiguous()


def varlen_sdpa_attention(module: torch.nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                          attention_mask: Optional[torch.Tensor], dropout: float = 0.0,
                          scaling: Optional[float] = None, **kwargs):
    position_ids = kwargs.get("position_ids")
    if (position_ids is None or query.shape[2] != key.shape[2] or query.shape[2] == 1
            or position_ids.shape[-1] != query.shape[2]
            or int((position_ids == 0).sum()) <= position_ids.shape[0]):  # not packed (or decoding): plain sdpa
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      **kwargs)
    rows = [segments(position_ids[b if position_ids.shape[0] > 1 else 0]) for b in range(query.shape[0])]
    window = kwargs.get("sliding_window")  # Mistral, Qwen2, Gemma's local layers: each token sees its last N
    windowed = bool(window) and any(e - s > window for row in rows for s, e in row)
    dropout = dropout if module.training else 0.0
    if not windowed and not dropout and _cpu_kernels_apply(query, key, value):
        query, key, value = (x.to(_autocast_dtype(x)) for x in (query, key, value))
        spans = [(b, s, e) for b, row in enumerate(rows) for s, e in row]
        return _CausalPerSequence.apply(query, key, value, spans, scaling), None
    return per_sequence_sdpa(query, key, value, rows, scaling, dropout, window), None


def varlen_sdpa_mask(*args, **kwargs):
    """No 2D attention mask (a padding-free or unpadded batch): no 4D mask either, the attention above is causal
    per sequence on its own; with one (padded rows): sdpa's mask."""
    if kwargs.get("attention_mask") is None:
        return None
    return sdpa_mask(*args, **kwargs)


AttentionInterface.register(NAME, varlen_sdpa_attention)
AttentionMaskInterface.register(NAME, varlen_sdpa_mask)
