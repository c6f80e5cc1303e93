"""SFT throughput: this runner's defaults against TRL's SFTTrainer, same model, data, batch and optimizer steps.

    python benchmarks/bench_sft.py [--steps 20] [--batch-size 8]

A small random Llama (4 layers, hidden 256, the tiny tokenizer) on benchmarks/data/chat_lengths.jsonl (chats of
about 50 to 520 tokens, median ~260). Each variant runs in its own process (clean peak memory); the figures are
real (non-padding) tokens per second of training (the Trainer's ``num_input_tokens_seen`` over ``train_runtime``),
wall time of training, peak RSS and the mean loss of the last 5 steps. The last lines are the ratios.

Variants: ``ours`` (``python -m autotrain_hydra trainer=sft`` defaults: padding-free batches of ``--batch-size``
chats), ``ours_packing`` (``training.packing=true``: rows of 512 tokens packed best-fit), ``trl_defaults``
(SFTTrainer as it comes: padded batches, activation checkpointing on), ``trl_packing`` (TRL tuned by hand: packing
bfd, no checkpointing). ``ours`` and ``trl_defaults`` train on the same chats in each step (their losses compare);
the packed variants put more chats in a step.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE / "data" / "chat_lengths.jsonl"
MAX_LEN = 512
LR = 1e-3
MODEL_SPEC = dict(hidden_size=256, intermediate_size=688, num_hidden_layers=4, num_attention_heads=4,
                  num_key_value_heads=4, max_position_embeddings=2048, tie_word_embeddings=True)


def build_model(path: Path) -> None:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from autotrain_hydra import models

    tok = models.build_tiny_tokenizer()
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=len(tok), pad_token_id=tok.pad_token_id,
                                         bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, **MODEL_SPEC))
    model.save_pretrained(path)
    tok.save_pretrained(path)


def summary(log_history, runtime, tokens) -> dict:
    losses = [e["loss"] for e in log_history if "loss" in e]
    return {"tokens_per_s": tokens / runtime, "train_s": runtime, "tokens": tokens,
            "final_loss": sum(losses[-5:]) / len(losses[-5:]),
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def cpu_args() -> dict:
    """TRL's configs default to bf16, which a CPU-only machine refuses: what a TRL user sets there."""
    import torch

    return {} if torch.cuda.is_available() else {"use_cpu": True, "bf16": False}


def run_trl(model_dir: str, steps: int, batch: int, out: str, **config) -> dict:
    from datasets import load_dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    ds = load_dataset("json", data_files=str(DATA), split="train")
    args = SFTConfig(output_dir=out, max_steps=steps, per_device_train_batch_size=batch, learning_rate=LR,
                     logging_steps=1, report_to="none", save_strategy="no", max_length=MAX_LEN, seed=42,
                     include_num_input_tokens_seen="non_padding", disable_tqdm=True, **cpu_args(), **config)
    trainer = SFTTrainer(model=AutoModelForCausalLM.from_pretrained(model_dir), args=args, train_dataset=ds,
                         processing_class=AutoTokenizer.from_pretrained(model_dir))
    result = trainer.train()
    return summary(trainer.state.log_history, result.metrics["train_runtime"], trainer.state.num_input_tokens_seen)


def run_ours(model_dir: str, steps: int, batch: int, out: str, *extra: str) -> dict:
    from autotrain_hydra.run import run
    from autotrain_hydra.compat.hydra import compose_config

    overrides = ["trainer=sft", "model=custom", f"model.name={model_dir}", f"data.path={DATA}",
                 f"training.max_steps={steps}", f"training.batch_size={batch}", f"training.lr={LR}",
                 "training.logging_steps=1", f"trainer.max_seq_length={MAX_LEN}", f"output_dir={out}", *extra]
    run(compose_config(overrides), overrides)
    m = json.loads((Path(out) / "metrics.json").read_text())
    history = [{"loss": v} for _, v in m["history"]["train"]]
    return summary(history, m["train_runtime_s"], m["train_tokens"])


def variant_parser(description: str, steps: int, variants: str = "ours,trl_defaults") -> argparse.ArgumentParser:
    """The options of a benchmark that runs each variant in a child process of its own, --runs times in turn."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--steps", type=int, default=steps)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--variants", default=variants)
    for hidden in ("--child", "--model-dir", "--data"):
        p.add_argument(hidden, help=argparse.SUPPRESS)
    return p


def as_child(measure) -> None:
    """In the child process: ``measure(out_dir)``'s figures, printed for the parent."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    with tempfile.TemporaryDirectory() as out:
        print("RESULT " + json.dumps(measure(os.path.join(out, "run"))))


def in_child(script: str, variant: str, model_dir: Path, data: Path, options: list) -> dict:
    """Run ``variant`` of ``script`` in a child process of its own; its figures (exit on a failure)."""
    proc = subprocess.run([sys.executable, script, "--child", variant, "--model-dir", str(model_dir), "--data",
                           str(data), *options], capture_output=True, text=True)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode or not lines:
        sys.exit(f"{variant} failed:\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1][7:])


def each_variant(script: str, a: argparse.Namespace, make_data, data_name: str, options: list, describe) -> dict:
    """Build the model and the data (``make_data(path)``), then run each of ``a.variants`` in a child process,
    ``a.runs`` times in turn, printing ``describe(run, variant, figures)`` with the process's wall time;
    {variant: [figures of each run]}."""
    results: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        model_dir, data = Path(tmp) / "model", Path(tmp) / data_name
        build_model(model_dir)
        make_data(data)
        for run in range(a.runs):
            for v in a.variants.split(","):
                started = time.time()
                r = in_child(script, v, model_dir, data, options)
                results.setdefault(v, []).append(r)
                print(f"{describe(run, v, r)}  (process {time.time() - started:.0f} s)", flush=True)
    return results


# the same recipe as ours (the guide's defaults), so that losses compare: only the speed settings differ
RECIPE = {"warmup_steps": 0.1, "weight_decay": 0.01, "lr_scheduler_type": "linear"}
VARIANTS = {
    "ours": lambda d, s, b, o: run_ours(d, s, b, o),
    "ours_packing": lambda d, s, b, o: run_ours(d, s, b, o, "training.packing=true"),
    "trl_defaults": lambda d, s, b, o: run_trl(d, s, b, o, **RECIPE),
    "trl_packing": lambda d, s, b, o: run_trl(d, s, b, o, packing=True, packing_strategy="bfd",
                                               gradient_checkpointing=False, **RECIPE),
}


def child(variant: str, model_dir: str, steps: int, batch: int) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    with tempfile.TemporaryDirectory() as out:
        result = VARIANTS[variant](model_dir, steps, batch, os.path.join(out, "run"))
    print("RESULT " + json.dumps(result))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--model-dir", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        child(a.child, a.model_dir, a.steps, a.batch_size)
        return
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = Path(tmp) / "model"
        build_model(model_dir)
        for v in a.variants.split(","):
            started = time.time()
            proc = subprocess.run([sys.executable, __file__, "--child", v, "--model-dir", str(model_dir),
                                   "--steps", str(a.steps), "--batch-size", str(a.batch_size)],
                                  capture_output=True, text=True)
            lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
            if proc.returncode or not lines:
                sys.exit(f"{v} failed:\n{proc.stderr[-3000:]}")
            results[v] = json.loads(lines[-1][7:])
            print(f"{v:<14} {results[v]['tokens_per_s']:>9.0f} tok/s  train {results[v]['train_s']:6.1f} s  "
                  f"peak {results[v]['peak_rss_mib']:6.0f} MiB  final loss {results[v]['final_loss']:.4f}  "
                  f"(process {time.time() - started:.0f} s)", flush=True)
    for mine, base in (("ours", "trl_defaults"), ("ours", "trl_packing"), ("ours_packing", "trl_packing"),
                       ("ours_packing", "trl_defaults")):
        if mine in results and base in results:
            m, r = results[mine], results[base]
            print(f"{mine} / {base}: {m['tokens_per_s'] / r['tokens_per_s']:.2f}x tokens/s, final loss "
                  f"{100 * (m['final_loss'] / r['final_loss'] - 1):+.1f}%")


if __name__ == "__main__":
    main()
