"""varlen_sdpa on a CPU: its kernel path against sdpa on each sequence, a model's forward and backward on one row.

    python benchmarks/bench_attention.py [--sequences 8,16] [--repeats 8] [--dtype fp32|bf16]

The model of bench_sft.py (4 layers, hidden 256), loaded twice: with ``varlen_sdpa`` (on a CPU: the CPU's
flash-attention kernels per sequence, each gradient written in place; autotrain_hydra/attention.py) and with the
same function's general path (``per_sequence_sdpa``: ``F.scaled_dot_product_attention`` on slices of the row, whose
gradients autograd zero-fills to the whole input per sequence and sums). A packed row of N sequences of 50-516
tokens (random, seeded), position ids restarting per sequence; the two alternate, ``--repeats`` times each; printed:
the median time of forward + loss + backward of each, their ratio, and the largest difference of their losses and
gradients (0 expected: the same kernels).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_sft import build_model  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sequences", default="8,16", help="sequences per row, one measurement each")
    p.add_argument("--repeats", type=int, default=8)
    p.add_argument("--dtype", default="fp32", choices=["fp32", "bf16"], help="bf16: in CPU autocast")
    a = p.parse_args()

    import torch
    from transformers import AttentionInterface, AutoModelForCausalLM

    from autotrain_hydra import attention

    def general(module, query, key, value, attention_mask, dropout=0.0, scaling=None, **kwargs):
        rows = [attention.segments(kwargs["position_ids"][0])]
        return attention.per_sequence_sdpa(query, key, value, rows, scaling, 0.0, None), None

    AttentionInterface.register("bench_general", general)
    with tempfile.TemporaryDirectory() as tmp:
        build_model(Path(tmp))
        models = {name: AutoModelForCausalLM.from_pretrained(tmp, attn_implementation=impl)
                  for name, impl in (("kernels", attention.NAME), ("sdpa_slices", "bench_general"))}

    def step(model, ids, positions):
        model.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.dtype == "bf16"):
            loss = model(input_ids=ids, position_ids=positions, labels=ids, use_cache=False).loss
        loss.backward()
        return loss.detach(), [p.grad.detach().clone() for p in model.parameters()]

    for n in (int(x) for x in a.sequences.split(",")):
        rng = random.Random(n)
        lengths = [rng.randint(50, 516) for _ in range(n)]
        torch.manual_seed(0)
        ids = torch.randint(5, 500, (1, sum(lengths)))
        positions = torch.cat([torch.arange(length) for length in lengths])[None]
        results = {name: step(model, ids, positions) for name, model in models.items()}  # warm-up; compared
        (loss_k, grads_k), (loss_s, grads_s) = results["kernels"], results["sdpa_slices"]
        diff = max([(loss_k - loss_s).abs().item()] + [(g - h).abs().max().item() for g, h in zip(grads_k, grads_s)])
        times = {name: [] for name in models}
        for _ in range(a.repeats):
            for name, model in models.items():
                started = time.perf_counter()
                step(model, ids, positions)
                times[name].append(time.perf_counter() - started)
        med = {name: statistics.median(t) for name, t in times.items()}
        print(f"{n} sequences, {sum(lengths)} tokens, {a.dtype}: kernels {1e3 * med['kernels']:.0f} ms, sdpa on "
              f"slices {1e3 * med['sdpa_slices']:.0f} ms: {med['sdpa_slices'] / med['kernels']:.2f}x the speed; "
              f"largest difference of loss and gradients {diff:.1e}", flush=True)


if __name__ == "__main__":
    main()
