"""SFT throughput: this runner's defaults against TRL's SFTTrainer, same model, data, batch and optimizer steps.

    python benchmarks/bench_sft.py [--steps 20] [--batch-size 8] [--runs 3] [--precision fp32|bf16|default]

A small random Llama (4 layers, hidden 256, the tiny tokenizer) on benchmarks/data/chat_lengths.jsonl (chats of
about 50 to 520 tokens, median ~260). Each variant runs in its own process (clean peak memory), ``--runs`` times in
turn; the figures are real (non-padding) tokens per second of training (the Trainer's ``num_input_tokens_seen`` over
``train_runtime``), wall time of training, peak RSS and the mean loss of the last 5 steps. The last lines are the
median ratios over the runs, and how far the final losses are apart.

Variants: ``ours`` (``python -m autotrain_hydra trainer=sft`` defaults: padding-free batches of ``--batch-size``
chats), ``ours_packing`` (``training.packing=true``: rows of 512 tokens packed best-fit), ``trl_defaults``
(SFTTrainer's speed settings as they come: padded batches, activation checkpointing on; precision and schedule as
below), ``trl_packing`` (TRL tuned by hand: packing bfd, no checkpointing). ``ours`` and ``trl_defaults`` train on
the same chats in each step (their losses compare); the packed variants put more chats in a step (their losses are
not printed against the others).

Precision: TRL's configs default to ``bf16=True``, and without a GPU TRL refuses to start unless ``use_cpu=True``
(its error says so); given that, it trains in bf16 autocast on a CPU. Ours trains in float32 on a CPU
(``training.mixed_precision=auto``). ``--precision fp32`` (the default) or ``bf16`` gives both the same arithmetic;
``--precision default`` leaves each its own. Both get the same schedule (linear decay, no warm-up: ours never starts
at learning rate 0, transformers' warm-up does), so that the final losses compare.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

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


def cpu_args(precision: Optional[str] = None) -> dict:
    """TRL's config for ``precision`` (fp32, bf16; None: TRL's default, bf16): ``use_cpu=True`` without a GPU, which
    TRL's configs refuse to start without (their default bf16 is then computed on the CPU, in autocast)."""
    import torch

    return {**({} if torch.cuda.is_available() else {"use_cpu": True}),
            **({"bf16": precision == "bf16"} if precision else {})}


def ours_settings(precision: Optional[str] = None) -> list:
    """Our overrides for ``precision`` (None: our default) and TRL's schedule (``RECIPE``)."""
    return ["training.warmup_ratio=0", *([f"training.mixed_precision={precision}"] if precision else [])]


def run_trl(model_dir: str, steps: int, batch: int, out: str, precision: Optional[str] = None, **config) -> dict:
    from datasets import load_dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    ds = load_dataset("json", data_files=str(DATA), split="train")
    args = SFTConfig(output_dir=out, max_steps=steps, per_device_train_batch_size=batch, learning_rate=LR,
                     logging_steps=1, report_to="none", save_strategy="no", max_length=MAX_LEN, seed=42,
                     include_num_input_tokens_seen="non_padding", disable_tqdm=True, **cpu_args(precision), **config)
    trainer = SFTTrainer(model=AutoModelForCausalLM.from_pretrained(model_dir), args=args, train_dataset=ds,
                         processing_class=AutoTokenizer.from_pretrained(model_dir))
    result = trainer.train()
    return summary(trainer.state.log_history, result.metrics["train_runtime"], trainer.state.num_input_tokens_seen)


def run_ours(model_dir: str, steps: int, batch: int, out: str, *extra: str, precision: Optional[str] = None) -> dict:
    from autotrain_hydra.run import run
    from autotrain_hydra.compat.hydra import compose_config

    overrides = ["trainer=sft", "model=custom", f"model.name={model_dir}", f"data.path={DATA}",
                 f"training.max_steps={steps}", f"training.batch_size={batch}", f"training.lr={LR}",
                 "training.logging_steps=1", f"trainer.max_seq_length={MAX_LEN}", f"output_dir={out}",
                 *ours_settings(precision), *extra]
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
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "default"],
                   help="both in float32, both in bf16 autocast, or each its own default (TRL: bf16; ours: fp32 on a "
                        "CPU)")
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


# the same recipe as ours (weight decay, linear decay; no warm-up, see ours_settings), so that losses compare: only
# the speed settings differ
RECIPE = {"warmup_steps": 0, "weight_decay": 0.01, "lr_scheduler_type": "linear"}
VARIANTS = {
    "ours": lambda d, s, b, o, p=None: run_ours(d, s, b, o, precision=p),
    "ours_packing": lambda d, s, b, o, p=None: run_ours(d, s, b, o, "training.packing=true", precision=p),
    "trl_defaults": lambda d, s, b, o, p=None: run_trl(d, s, b, o, p, **RECIPE),
    "trl_packing": lambda d, s, b, o, p=None: run_trl(d, s, b, o, p, packing=True, packing_strategy="bfd",
                                                       gradient_checkpointing=False, **RECIPE),
}


def precision_of(a: argparse.Namespace) -> Optional[str]:
    return None if a.precision == "default" else a.precision


def median_ratios(results: dict, pairs, what: str, speed=lambda r: 1 / r["train_s"], unit: str = "the speed",
                  precision: str = "fp32") -> None:
    """Print, for each (mine, base) of ``pairs`` both measured, the median over the runs of mine's ``speed`` over
    base's, and each run's final-loss difference where the pair trains on the same batches (``SAME_BATCHES``)."""
    sides = "ours {}, TRL {}".format(*precisions(precision))
    for mine, base in pairs:
        if mine in results and base in results:
            ratios = [speed(m) / speed(b) for m, b in zip(results[mine], results[base])]
            losses = [100 * (m["final_loss"] / b["final_loss"] - 1) for m, b in zip(results[mine], results[base])
                      if (mine, base) in SAME_BATCHES and "final_loss" in m and b.get("final_loss")]
            print(f"{what} {mine} / {base} ({sides}): median {statistics.median(ratios):.2f}x {unit} (runs: "
                  f"{', '.join(f'{x:.2f}' for x in ratios)})" + (
                      f", final loss {', '.join(f'{x:+.1f}%' for x in losses)}" if losses else ""))


def precisions(precision: str) -> tuple:
    """(ours, TRL's) precision for ``--precision``: the same for both, or each its own default (TRL: bf16; ours: bf16
    on a GPU, float32 on a CPU)."""
    import torch

    if precision != "default":
        both = {"fp32": "float32"}.get(precision, precision)
        return both, both
    return ("bf16" if torch.cuda.is_available() else "float32"), "bf16"


# the pairs of variants that train on the same batches in each step, so that their final losses compare
SAME_BATCHES = {("ours", "trl_defaults"), ("ours_padded", "trl_defaults"), ("trl_padding_free", "trl_defaults"),
                ("trl_nogc", "trl_defaults"), ("trl_fused", "trl_defaults"), ("ours_packing", "trl_packing")}


def main() -> None:
    p = variant_parser(__doc__.splitlines()[0], steps=20, variants=",".join(VARIANTS))
    a = p.parse_args()
    if a.child:
        global DATA
        DATA = Path(a.data)  # the parent's copy of the chats
        return as_child(lambda out: VARIANTS[a.child](a.model_dir, a.steps, a.batch_size, out, precision_of(a)))
    options = ["--steps", str(a.steps), "--batch-size", str(a.batch_size), "--precision", a.precision]
    results = each_variant(__file__, a, lambda path: path.write_bytes(DATA.read_bytes()), "chats.jsonl", options,
                           lambda run, v, r: (
                               f"sft run {run + 1} {v:<14} {r['tokens_per_s']:>7.0f} tok/s  train {r['train_s']:6.1f} s"
                               f"  peak {r['peak_rss_mib']:6.0f} MiB  final loss {r['final_loss']:.4f}"))
    median_ratios(results, [("ours", "trl_defaults"), ("ours", "trl_packing"), ("ours_packing", "trl_packing"),
                            ("ours_packing", "trl_defaults")], "sft", speed=lambda r: r["tokens_per_s"],
                  unit="tokens/s", precision=a.precision)


if __name__ == "__main__":
    main()
