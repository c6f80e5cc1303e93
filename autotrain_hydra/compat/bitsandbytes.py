"""The bitsandbytes internals ``peft=qlora`` relies on, all in one place (bitsandbytes 0.50).

- ``Linear4bit.support_avx512bf16_for_cpu``: on a CPU with AVX512-BF16, bitsandbytes repacks a 4-bit layer's weights
  for its fast CPU kernel the first time the layer runs in inference (eval mode, no grad), and from then on runs the
  layer through ``gemv_4bit``, which has no autograd kernel: once a model in training has been evaluated, the
  gradient through those layers to the adapters below them is silently lost (torch warns "an autograd kernel was
  not registered"). And the repacking asserts that the layer's output features are a multiple of 32 and its input
  features a multiple of the quantisation block (``functional._convert_weight_packed_for_cpu``): a layer of another
  shape (the tiny model's 176-wide MLP) fails in evaluation. ``cpu_safe`` turns the repacking off: on every layer of
  a model that trains, on the layers of another shape in a model that only generates.
- the ``bitsandbytes.backends.cpu.ops`` logger: it says at import, on every CPU machine without the optional
  ``kernels`` package, that it "Failed to load CPU gemm_4bit_forward from kernels-community" (its pure-torch
  fallback is used, and works): that one message is dropped (``quiet``), the logger's others are kept.

``tests/compat/test_bitsandbytes.py`` checks each against the installed bitsandbytes.
"""

from __future__ import annotations

import logging
from typing import Any, Optional

PACK_ROWS = 32  # _convert_weight_packed_for_cpu's block_n


CPU_OPS = "bitsandbytes.backends.cpu.ops"
KERNELS_NOTICE = "Failed to load CPU gemm_4bit_forward from kernels-community"


class _NoKernelsNotice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return KERNELS_NOTICE not in str(record.msg)


def quiet() -> None:
    """Drop bitsandbytes' harmless import-time notice about the optional ``kernels`` package (call it before
    bitsandbytes is imported: transformers and peft import it); once per process."""
    logger = logging.getLogger(CPU_OPS)
    if not any(isinstance(f, _NoKernelsNotice) for f in logger.filters):
        logger.addFilter(_NoKernelsNotice())


def available() -> Optional[str]:
    """None when bitsandbytes imports and has a backend for this machine; else why not (one line)."""
    quiet()
    try:
        import bitsandbytes  # noqa: F401
    except Exception as e:  # a broken install raises anything (RuntimeError of a missing CUDA library, OSError)
        first = (str(e).strip().splitlines() or [""])[0][:200]
        return f"bitsandbytes does not load here ({type(e).__name__}{': ' + first if first else ''})"
    return None


def cpu_safe(model: Any, training: bool = True) -> int:
    """Turn bitsandbytes' CPU repacking off (see the module's docstring) on every 4-bit layer of a model that trains,
    and on the layers it cannot repack in one that only generates; the number of layers changed."""
    import bitsandbytes as bnb

    changed = 0
    for module in model.modules():
        if isinstance(module, bnb.nn.Linear4bit) and getattr(module, "support_avx512bf16_for_cpu", False):
            state = getattr(module.weight, "quant_state", None)
            block = getattr(state, "blocksize", 64) or 64
            if training or module.out_features % PACK_ROWS or module.in_features % block:
                module.support_avx512bf16_for_cpu = False
                changed += 1
    return changed
