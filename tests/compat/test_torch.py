"""The hooks on torch's non-public API (compat/torch.py): fail loudly when an upgrade changes them."""

import torch

from autotrain_hydra.compat import torch as torch_compat


def test_the_cpu_flash_attention_ops_are_sdpas_own():
    """The forward and backward ops equal ``F.scaled_dot_product_attention`` (causal and not, grouped-query, a
    strided (B, T, H, D) layout as a model's projections give), with a float32 log-sum-exp per query."""
    torch.manual_seed(0)
    for causal in (True, False):
        q, k, v = (torch.randn(1, 9, h, 8).transpose(1, 2).requires_grad_() for h in (4, 2, 2))
        out, lse = torch_compat.flash_attention_cpu(q, k, v, causal, 0.3)
        want = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=causal, scale=0.3, enable_gqa=True)
        torch.testing.assert_close(out, want)
        assert lse.shape == (1, 4, 9) and lse.dtype == torch.float32
        grad = torch.randn_like(want)
        got = torch_compat.flash_attention_cpu_backward(grad, q.detach(), k.detach(), v.detach(), out.detach(), lse,
                                                        causal, 0.3)
        for g, e in zip(got, torch.autograd.grad(want, (q, k, v), grad)):
            assert g.shape == e.shape
            torch.testing.assert_close(g, e)
