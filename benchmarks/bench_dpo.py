"""DPO throughput: this runner's defaults against TRL's DPOTrainer with its defaults, same model, data, batch and
optimizer steps.

    python benchmarks/bench_dpo.py [--steps 12] [--batch-size 8]

The model of bench_sft.py; pairs made from benchmarks/data/chat_lengths.jsonl (prompt: the user turn, chosen: the
answer, rejected: another row's answer), so lengths vary as in chat data. Each variant in its own process; the
figures are real (non-padding) tokens per second of training, wall time, peak RSS, mean loss of the last 5 steps,
then the ratio. TRL gets the same recipe (warm-up, weight decay) and the pre-tokenized pairs our data step makes,
so that only the speed settings differ.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_sft import DATA, LR, RECIPE, build_model, cpu_args, summary  # noqa: E402


def make_pairs(path: Path) -> None:
    rows = [json.loads(line)["messages"] for line in DATA.read_text().splitlines()]
    with path.open("w") as f:
        for i, msgs in enumerate(rows):
            other = rows[(i * 7 + 3) % len(rows)][1]["content"]
            f.write(json.dumps({"prompt": msgs[0]["content"], "chosen": " " + msgs[1]["content"],
                                "rejected": " " + other}) + "\n")


def run_ours(model_dir: str, data: str, steps: int, batch: int, out: str, *extra: str) -> dict:
    from autotrain_hydra.run import run
    from autotrain_hydra.compat.hydra import compose_config

    overrides = ["trainer=dpo", "model=custom", f"model.name={model_dir}", f"data.path={data}",
                 "data.prompt_text_column=prompt", "data.text_column=chosen", "data.rejected_text_column=rejected",
                 f"training.max_steps={steps}", f"training.batch_size={batch}", f"training.lr={LR}",
                 "training.logging_steps=1", f"output_dir={out}", *extra]
    run(compose_config(overrides), overrides)
    m = json.loads((Path(out) / "metrics.json").read_text())
    return summary([{"loss": v} for _, v in m["history"]["train"]], m["train_runtime_s"], m["train_tokens"])


def run_trl(model_dir: str, data: str, steps: int, batch: int, out: str, **config) -> dict:
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    from autotrain_hydra.compat.hydra import compose_config
    from autotrain_hydra.compat.trl import pretokenized_dpo
    from autotrain_hydra.run import prepare
    from autotrain_hydra.trainers.common import Job
    from autotrain_hydra.trainers.preference import load_pairs

    Pretokenized = pretokenized_dpo(DPOTrainer)  # the pairs as our data step makes them: same tokens for both
    cfg = compose_config(["trainer=dpo", f"data.path={data}", "data.prompt_text_column=prompt",
                          "data.text_column=chosen", "data.rejected_text_column=rejected", f"model.name={model_dir}"])
    resolved, _ = prepare(cfg)
    tok = AutoTokenizer.from_pretrained(model_dir)
    pairs = load_pairs(Job(resolved.cfg, out), tok)
    flat = config.pop("padding_free", False)
    args = DPOConfig(output_dir=out, max_steps=steps, per_device_train_batch_size=batch, learning_rate=LR,
                     logging_steps=1, report_to="none", save_strategy="no", seed=42, max_length=1024,
                     include_num_input_tokens_seen="non_padding", disable_tqdm=True, **cpu_args(), **{**RECIPE, **config})
    if flat:
        import autotrain_hydra.attention  # noqa: F401  (registers varlen_sdpa)
    attn = {"attn_implementation": "varlen_sdpa"} if flat else {}
    trainer = Pretokenized(model=AutoModelForCausalLM.from_pretrained(model_dir, **attn), args=args,
                           train_dataset=pairs.train, processing_class=tok)
    if flat:  # TRL's own loop, schedule and batches, with our padding-free forward: the same losses, step by step
        from autotrain_hydra import padding_free

        padding_free.install(trainer.model)
        padding_free.install(trainer.ref_model)
    result = trainer.train()
    return summary(trainer.state.log_history, result.metrics["train_runtime"], trainer.state.num_input_tokens_seen)


VARIANTS = {"ours": run_ours, "trl_defaults": run_trl,
            "ours_padded": lambda *a: run_ours(*a, "training.padding_free=false"),  # batches grouped by length
            "trl_padding_free": lambda *a: run_trl(*a, padding_free=True),  # checks: same losses as trl_defaults
            # probes of single TRL settings
            "trl_nogc": lambda *a: run_trl(*a, gradient_checkpointing=False),
            "trl_fused": lambda *a: run_trl(*a, optim="adamw_torch_fused")}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--variants", default="ours,trl_defaults")
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--model-dir", help=argparse.SUPPRESS)
    p.add_argument("--data", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
        with tempfile.TemporaryDirectory() as out:
            print("RESULT " + json.dumps(VARIANTS[a.child](a.model_dir, a.data, a.steps, a.batch_size,
                                                           os.path.join(out, "run"))))
        return
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        model_dir, data = Path(tmp) / "model", Path(tmp) / "pairs.jsonl"
        build_model(model_dir)
        make_pairs(data)
        for v in a.variants.split(","):
            started = time.time()
            proc = subprocess.run([sys.executable, __file__, "--child", v, "--model-dir", str(model_dir), "--data",
                                   str(data), "--steps", str(a.steps), "--batch-size", str(a.batch_size)],
                                  capture_output=True, text=True)
            lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
            if proc.returncode or not lines:
                sys.exit(f"{v} failed:\n{proc.stderr[-3000:]}")
            results[v] = r = json.loads(lines[-1][7:])
            print(f"{v:<14} {r['tokens_per_s']:>9.0f} tok/s  train {r['train_s']:6.1f} s  peak {r['peak_rss_mib']:6.0f} "
                  f"MiB  final loss {r['final_loss']:.4f}  (process {time.time() - started:.0f} s)", flush=True)
    if "ours" in results and "trl_defaults" in results:
        o, t = results["ours"], results["trl_defaults"]
        print(f"ours / trl_defaults: {o['tokens_per_s'] / t['tokens_per_s']:.2f}x tokens/s, final loss "
              f"{100 * (o['final_loss'] / t['final_loss'] - 1):+.1f}%")


if __name__ == "__main__":
    main()
