"""``varlen_sdpa``: attention for packed (padding-free) batches without a flash-attention or flex kernel.

A packed row holds several sequences, their position ids restarting at 0. sdpa given that row builds a
block-diagonal mask over the whole row and computes attention for every pair of tokens in it (the cost of the
row's length squared, most of it masked away). This function instead runs causal sdpa on each sequence of the row
(``is_causal``, no mask: torch's fused CPU/GPU kernels), so attention costs the sum of the squared sequence
lengths, as flash-attention's varlen kernel does. Rows that are not packed go to plain sdpa with their mask.

Registered with transformers' AttentionInterface and AttentionMaskInterface under ``varlen_sdpa`` on import.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

NAME = "varlen_sdpa"


def segments(position_ids: torch.Tensor) -> list:
    """[(start, end), ...] of the sequences packed in one row (a new one wherever the position restarts at 0)."""
    starts = (position_ids == 0).nonzero().flatten().tolist()
    if not starts or starts[0] != 0:
        starts = [0] + starts
    return list(zip(starts, starts[1:] + [int(position_ids.shape[-1])]))


def varlen_sdpa_attention(module: torch.nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                          attention_mask: Optional[torch.Tensor], dropout: float = 0.0,
                          scaling: Optional[float] = None, **kwargs):
    position_ids = kwargs.get("position_ids")
    if (position_ids is None or query.shape[2] != key.shape[2] or query.shape[2] == 1
            or int((position_ids == 0).sum()) <= position_ids.shape[0]):  # not packed (or decoding): plain sdpa
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      **kwargs)
    gqa = query.shape[1] != key.shape[1]
    window = kwargs.get("sliding_window")  # Mistral, Qwen2, Gemma's local layers: each token sees its last N
    rows = []
    for b in range(query.shape[0]):
        parts = []
        for s, e in segments(position_ids[b if position_ids.shape[0] > 1 else 0]):
            causal = {"is_causal": True}
            if window and e - s > window:  # a sequence longer than the window: causal within the window
                i = torch.arange(e - s, device=query.device)
                causal = {"attn_mask": (i[None, :] <= i[:, None]) & (i[:, None] - i[None, :] < window)}
            parts.append(F.scaled_dot_product_attention(query[b:b + 1, :, s:e], key[b:b + 1, :, s:e],
                                                        value[b:b + 1, :, s:e], scale=scaling, enable_gqa=gqa,
                                                        dropout_p=dropout if module.training else 0.0, **causal))
        rows.append(torch.cat(parts, dim=2))
    out = torch.cat(rows, dim=0)
    return out.transpose(1, 2).contiguous(), None


def varlen_sdpa_mask(*args, **kwargs):
    """No 2D attention mask (a padding-free or unpadded batch): no 4D mask either, the attention above is causal
    per sequence on its own; with one (padded rows): sdpa's mask."""
    if kwargs.get("attention_mask") is None:
        return None
    return sdpa_mask(*args, **kwargs)


AttentionInterface.register(NAME, varlen_sdpa_attention)
AttentionMaskInterface.register(NAME, varlen_sdpa_mask)
