"""GPU SFT throughput and MFU: this runner's defaults against TRL's SFTTrainer, one script, a few minutes.

    python benchmarks/gpu/bench_gpu_sft.py [--steps 30] [--smoke]

A ~0.55B random-weight Llama (hidden 1536, 16 layers, vocab 32000), bf16, batch 8, max length 1024, on chats of
chat-like lengths (log-normal, median ~245, mean ~320, max 1024 tokens). Variants, each in its own process:
``ours`` (``trainer=sft`` defaults: padding-free batches, varlen attention), ``ours_packing``
(``training.packing=true``), ``trl_defaults`` (SFTTrainer as it comes), ``trl_packing`` (packing bfd, no activation
checkpointing); each in its own default precision (bf16 on a GPU for both; ``--smoke`` on a CPU: ours float32, TRL
bf16) and with bench_sft.py's schedule (linear, no warm-up). Prints non-padding tokens/s, MFU
(6 · parameters · tokens / time / the card's dense bf16 peak), peak GPU memory, final loss and the ratios.
Needs torch, transformers, trl, datasets, accelerate, hydra-core, omegaconf and this package (carry the wheels).
``--smoke`` runs a 2-layer model for 3 steps on whatever device there is, to check the script itself.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import bench_sft  # noqa: E402

PEAK_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L40S": 362.0}
SPEC = dict(vocab_size=32000, hidden_size=1536, intermediate_size=4096, num_hidden_layers=16, num_attention_heads=12,
            num_key_value_heads=12, max_position_embeddings=4096, tie_word_embeddings=False)


def build(path: Path, smoke: bool) -> int:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from autotrain_hydra import models

    tok = models.build_tiny_tokenizer()
    spec = dict(SPEC, num_hidden_layers=2, hidden_size=256, intermediate_size=688, num_attention_heads=4,
                num_key_value_heads=4) if smoke else SPEC
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id,
                                         eos_token_id=tok.eos_token_id, **spec))
    (model if smoke else model.to(torch.bfloat16)).save_pretrained(path)
    tok.save_pretrained(path)
    return sum(p.numel() for p in model.parameters())


def make_data(path: Path, n: int = 2048) -> None:
    rng = random.Random(0)
    words = "what is the answer to plus minus times color night day sky sea tree river light".split()
    with path.open("w") as f:
        for _ in range(n):
            length = int(min(1000, max(16, rng.lognormvariate(5.5, 0.65))))
            q = " ".join(rng.choice(words) for _ in range(max(2, length // 5)))
            a = " ".join(rng.choice(words) for _ in range(max(2, length - length // 5)))
            f.write(json.dumps({"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]})
                    + "\n")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--smoke", action="store_true")
    p.add_argument("--child")
    p.add_argument("--model-dir")
    p.add_argument("--data")
    a = p.parse_args()
    bench_sft.MAX_LEN, bench_sft.LR = (256 if a.smoke else 1024), 1e-4
    if a.child:
        import torch

        bench_sft.DATA = Path(a.data)
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        with tempfile.TemporaryDirectory() as out:
            r = bench_sft.VARIANTS[a.child](a.model_dir, a.steps, 8, os.path.join(out, "run"))
        r["peak_gpu_gib"] = torch.cuda.max_memory_allocated() / 2 ** 30 if torch.cuda.is_available() else 0.0
        print("RESULT " + json.dumps(r))
        return
    import torch

    card = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    peak = next((v for k, v in PEAK_TFLOPS.items() if k in card), None)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        model_dir, data = Path(tmp) / "model", Path(tmp) / "chats.jsonl"
        n_params = build(model_dir, a.smoke)
        make_data(data)
        for v in bench_sft.VARIANTS:
            started = time.time()
            proc = subprocess.run([sys.executable, __file__, "--child", v, "--model-dir", str(model_dir), "--data",
                                   str(data), "--steps", str(3 if a.smoke else a.steps)]
                                  + (["--smoke"] if a.smoke else []), capture_output=True, text=True)
            lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
            if proc.returncode or not lines:
                print(f"{v} failed:\n{proc.stderr[-3000:]}", flush=True)
                continue
            r = results[v] = json.loads(lines[-1][7:])
            mfu = 6 * n_params * r["tokens_per_s"] / (peak * 1e12) if peak else float("nan")
            r["mfu"] = mfu
            print(f"{v:<14} {r['tokens_per_s']:>10.0f} tok/s  MFU {100 * mfu:5.1f}%  peak {r['peak_gpu_gib']:5.1f} GiB  "
                  f"final loss {r['final_loss']:.4f}  ({time.time() - started:.0f} s)", flush=True)
    print(f"card: {card}; model parameters: {n_params / 1e9:.3f}B; peak bf16 {peak} TFLOPS")
    if "ours" in results:
        for base in [k for k in results if k != "ours"]:
            print(f"ours / {base}: {results['ours']['tokens_per_s'] / results[base]['tokens_per_s']:.2f}x tokens/s")


if __name__ == "__main__":
    main()
