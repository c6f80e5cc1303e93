"""Every use of torch's non-public API, in one place (checked by ``tests/compat/test_torch.py``).

``varlen_sdpa`` (autotrain_hydra.attention) runs causal attention on each sequence of a packed row. Through
``F.scaled_dot_product_attention`` on slices of the row, autograd gives each slice's gradient back as a tensor of the
whole row's size, zero-filled, and adds them up: with 16 sequences a row (a batch of 8 preference pairs), that cost
8% of a training step on a CPU (bench_preference.py, torch profiler). The CPU's fused flash-attention kernels are
called here directly instead, so that each sequence's gradient is written into its own place: the forward
(``aten::_scaled_dot_product_flash_attention_for_cpu``: output and log-sum-exp) and the backward
(``..._backward``), the two ops ``F.scaled_dot_product_attention`` dispatches to on a CPU.
"""

from __future__ import annotations

from typing import Optional, Tuple

import torch


def flash_attention_cpu(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, is_causal: bool,
                        scale: Optional[float]) -> Tuple[torch.Tensor, torch.Tensor]:
    """(output (B, H, L, D), log-sum-exp (B, H, L) float32) of the CPU's flash attention; key/value may have fewer
    heads (grouped-query attention)."""
    return torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(query, key, value, 0.0, is_causal, scale=scale)


def flash_attention_cpu_backward(grad_out: torch.Tensor, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                                 out: torch.Tensor, logsumexp: torch.Tensor, is_causal: bool,
                                 scale: Optional[float]) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(grad of query, key, value) for ``flash_attention_cpu``'s output ``out`` and ``logsumexp``."""
    return torch.ops.aten._scaled_dot_product_flash_attention_for_cpu_backward(
        grad_out, query, key, value, out, logsumexp, 0.0, is_causal, scale=scale)
