"""Every use of torch's non-public API, in one place (checked by ``tests/compat/test_torch.py``).

``varlen_sdpa`` (autotrain_hydra.attention, where the reason is) calls the two ops ``F.scaled_dot_product_attention``
dispatches to on a CPU for float32/bfloat16 inputs of one head size, each head's vector contiguous: the CPU's
flash-attention forward (``aten::_scaled_dot_product_flash_attention_for_cpu``: output and log-sum-exp) and its
backward (``..._backward``).
"""

from __future__ import annotations

from typing import Optional, Tuple

import torch


def flash_attention_cpu(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, is_causal: bool,
                        scale: Optional[float]) -> Tuple[torch.Tensor, torch.Tensor]:
    """(output (B, H, L, D), log-sum-exp (B, H, L); float32 for float32 and bfloat16 inputs) of the CPU's flash
    attention; key/value may have fewer heads (grouped-query attention)."""
    return torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(query, key, value, 0.0, is_causal, scale=scale)


def flash_attention_cpu_backward(grad_out: torch.Tensor, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                                 out: torch.Tensor, logsumexp: torch.Tensor, is_causal: bool,
                                 scale: Optional[float]) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(grad of query, key, value) for ``flash_attention_cpu``'s output ``out`` and ``logsumexp``."""
    return torch.ops.aten._scaled_dot_product_flash_attention_for_cpu_backward(
        grad_out, query, key, value, out, logsumexp, 0.0, is_causal, scale=scale)
