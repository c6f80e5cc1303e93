"""The bitsandbytes internals autotrain_hydra.compat.bitsandbytes relies on: fails loudly when an upgrade moves them."""

import logging

import pytest


def test_the_cpu_repacking_switch_and_the_logger_are_where_compat_expects_them():
    import bitsandbytes.backends.cpu.ops as cpu_ops
    import bitsandbytes.functional as F
    from bitsandbytes.nn import Linear4bit

    from autotrain_hydra.compat import bitsandbytes

    assert hasattr(F, "_convert_weight_packed_for_cpu")  # the repacking cpu_safe keeps away from odd shapes
    layer = Linear4bit(64, 176, bias=False)
    assert hasattr(layer, "support_avx512bf16_for_cpu")  # the switch cpu_safe turns off
    assert any(isinstance(v, logging.Logger) and v.name == bitsandbytes.CPU_OPS for v in vars(cpu_ops).values())
    assert bitsandbytes.KERNELS_NOTICE in open(cpu_ops.__file__, encoding="utf-8").read()  # the notice we drop
    bitsandbytes.quiet()
    logger = logging.getLogger(bitsandbytes.CPU_OPS)
    record = logger.makeRecord(logger.name, logging.WARNING, "f", 1, bitsandbytes.KERNELS_NOTICE + ": x", (), None)
    other = logger.makeRecord(logger.name, logging.WARNING, "f", 1, "another warning", (), None)
    assert not logger.filter(record) and logger.filter(other)


@pytest.mark.parametrize("training,expected", [(True, [False, False]), (False, [True, False])])
def test_cpu_safe_turns_the_repacking_off_for_training_and_for_shapes_it_cannot_repack(training, expected):
    import torch
    from bitsandbytes.nn import Linear4bit

    from autotrain_hydra.compat import bitsandbytes

    model = torch.nn.Sequential(Linear4bit(64, 64, bias=False), Linear4bit(64, 176, bias=False))
    for layer in model:
        layer.support_avx512bf16_for_cpu = True  # as on a CPU with AVX512-BF16
    assert bitsandbytes.cpu_safe(model, training=training) == expected.count(False)
    assert [layer.support_avx512bf16_for_cpu for layer in model] == expected
