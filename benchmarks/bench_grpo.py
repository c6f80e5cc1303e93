"""GRPO throughput: this runner's defaults against TRL's GRPOTrainer with its defaults, same model, prompts, reward
function, group size, completion length, batch and optimizer steps.

    python benchmarks/bench_grpo.py [--steps 6] [--batch-size 8] [--generations 4] [--completion 64] [--runs 3]
        [--precision fp32|bf16|default]

The model of bench_sft.py; the prompts are the user turns of benchmarks/data/chat_lengths.jsonl; the reward is the
shipped ``autotrain_hydra.rewards.has_number``. Each variant in its own process, --runs times in turn; printed per
run: prompts per second of training (a step takes batch / generations prompts), generated tokens per second (TRL's
``completions/mean_length`` of each step), wall time, peak RSS; then the median ratio over the runs. Precision and
schedule as in bench_sft.py (``--precision fp32``, the default: both in float32; linear decay, no warm-up).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_sft import (DATA, LR, RECIPE, as_child, cpu_args, each_variant, median_ratios, ours_settings,  # noqa: E402
                       precision_of, variant_parser)


def make_prompts(path: Path) -> None:
    with path.open("w") as f:
        for line in DATA.read_text().splitlines():
            f.write(json.dumps({"prompt": json.loads(line)["messages"][0]["content"]}) + "\n")


def figures(log_history: list, runtime: float, steps: int, batch: int, generations: int) -> dict:
    import resource

    lengths = [e["completions/mean_length"] for e in log_history if "completions/mean_length" in e]
    return {"train_s": runtime, "prompts_per_s": steps * batch / generations / runtime,
            "generated_tokens_per_s": sum(lengths) * batch / runtime if lengths else 0.0,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def run_ours(model_dir: str, data: str, a: argparse.Namespace, out: str) -> dict:
    from autotrain_hydra.compat.hydra import compose_config
    from autotrain_hydra.run import run

    overrides = ["trainer=grpo", "model=custom", f"model.name={model_dir}", f"data.path={data}",
                 "data.prompt_text_column=prompt", "data.valid_path=null", "data.valid_fraction=null",
                 "trainer.grpo.reward_funcs=[autotrain_hydra.rewards.has_number]",
                 f"trainer.grpo.num_generations={a.generations}",
                 f"trainer.grpo.max_completion_length={a.completion}", f"training.max_steps={a.steps}",
                 f"training.batch_size={a.batch_size}", f"training.lr={LR}", "training.logging_steps=1",
                 f"output_dir={out}", *ours_settings(precision_of(a))]
    run(compose_config(overrides), overrides)
    m = json.loads((Path(out) / "metrics.json").read_text())
    history = [{"completions/mean_length": v} for _, v in m["history"].get("completion_length", [])]
    return figures(history, m["train_runtime_s"], a.steps, a.batch_size, a.generations)


def run_trl(model_dir: str, data: str, a: argparse.Namespace, out: str) -> dict:
    from datasets import load_dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, set_seed
    from trl import GRPOConfig, GRPOTrainer

    from autotrain_hydra.rewards import has_number

    set_seed(42)
    tok = AutoTokenizer.from_pretrained(model_dir)
    args = GRPOConfig(output_dir=out, max_steps=a.steps, per_device_train_batch_size=a.batch_size,
                      num_generations=a.generations, max_completion_length=a.completion, learning_rate=LR,
                      logging_steps=1, report_to="none", save_strategy="no", seed=42, disable_tqdm=True,
                      **cpu_args(precision_of(a)), **RECIPE)
    trainer = GRPOTrainer(model=AutoModelForCausalLM.from_pretrained(model_dir), reward_funcs=[has_number],
                          args=args, train_dataset=load_dataset("json", data_files=data, split="train"),
                          processing_class=tok)
    result = trainer.train()
    return figures(trainer.state.log_history, result.metrics["train_runtime"], a.steps, a.batch_size, a.generations)


VARIANTS = {"ours": run_ours, "trl_defaults": run_trl}


def main() -> None:
    p = variant_parser(__doc__.splitlines()[0], steps=6)
    p.add_argument("--generations", type=int, default=4)
    p.add_argument("--completion", type=int, default=64)
    a = p.parse_args()
    if a.child:
        return as_child(lambda out: VARIANTS[a.child](a.model_dir, a.data, a, out))
    settings = ["--steps", str(a.steps), "--batch-size", str(a.batch_size), "--generations", str(a.generations),
                "--completion", str(a.completion), "--precision", a.precision]
    results = each_variant(__file__, a, make_prompts, "prompts.jsonl", settings, lambda run, v, r: (
        f"grpo run {run + 1} {v:<13} {r['prompts_per_s']:6.2f} prompts/s {r['generated_tokens_per_s']:7.0f} "
        f"generated tok/s  train {r['train_s']:6.1f} s  peak {r['peak_rss_mib']:6.0f} MiB"))
    median_ratios(results, [("ours", "trl_defaults")], "grpo", unit="the speed (same prompts, steps and batch)",
                  precision=a.precision)


if __name__ == "__main__":
    main()
