"""Preference trainers' throughput: this runner's defaults against TRL's trainer (DPOTrainer, ORPOTrainer, KTOTrainer,
RewardTrainer) with its speed settings as they come, same model, data, batch, optimizer steps and recipe.

    python benchmarks/bench_preference.py [--trainer dpo|orpo|kto|reward] [--steps 12] [--batch-size 8] [--runs 3]
        [--precision fp32|bf16|default]

The model of bench_sft.py; pairs made from benchmarks/data/chat_lengths.jsonl (prompt: the user turn, chosen: the
answer, rejected: another row's answer), so lengths vary as in chat data (kto: each pair as a desirable and an
undesirable row). Each variant in its own process, --runs times in turn; printed per run: pairs (kto: rows) per
second of training, real (non-padding) tokens per second where the trainer counts them, wall time, peak RSS, mean
loss of the last 5 steps; then the median ratio over the runs. TRL gets our recipe (bench_sft.py's schedule, weight
decay; ORPO: our λ, ``trainer.orpo_alpha``, as its ``beta``, whose default is 0.1) and the pre-tokenized pairs our
data step makes (kto: the same text rows), so that only the speed settings differ. Precision as in bench_sft.py
(``--precision fp32``, the default: both in float32; ``bf16``: both in autocast; ``default``: each its own).
Variants: ours, ours_padded (training.padding_free=false), trl_defaults, trl_padding_free (dpo/kto/orpo: TRL's own
loop and batches with our padding-free forward: its losses must equal trl_defaults').
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_sft import (DATA, LR, RECIPE, as_child, cpu_args, each_variant, median_ratios, ours_settings,  # noqa: E402
                       precision_of, summary, variant_parser)


def make_pairs(path: Path) -> None:
    rows = [json.loads(line)["messages"] for line in DATA.read_text().splitlines()]
    with path.open("w") as f:
        for i, msgs in enumerate(rows):
            other = rows[(i * 7 + 3) % len(rows)][1]["content"]
            f.write(json.dumps({"prompt": msgs[0]["content"], "chosen": " " + msgs[1]["content"],
                                "rejected": " " + other}) + "\n")


def run_ours(trainer: str, model_dir: str, data: str, steps: int, batch: int, out: str, *extra: str,
             precision: Optional[str] = None) -> dict:
    from autotrain_hydra.run import run
    from autotrain_hydra.compat.hydra import compose_config

    overrides = [f"trainer={trainer}", "model=custom", f"model.name={model_dir}", f"data.path={data}",
                 "data.prompt_text_column=prompt", "data.text_column=chosen", "data.rejected_text_column=rejected",
                 f"training.max_steps={steps}", f"training.batch_size={batch}", f"training.lr={LR}",
                 "training.logging_steps=1", f"output_dir={out}", *ours_settings(precision), *extra]
    run(compose_config(overrides), overrides)
    m = json.loads((Path(out) / "metrics.json").read_text())
    return with_rows(summary([{"loss": v} for _, v in m["history"]["train"]], m["train_runtime_s"],
                             m.get("train_tokens") or 0), steps * batch)


def with_rows(result: dict, rows: int) -> dict:
    return {**result, "rows_per_s": rows / result["train_s"]}


def run_trl(trainer: str, model_dir: str, data: str, steps: int, batch: int, out: str, precision: Optional[str] = None,
            **config) -> dict:
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer, set_seed

    from autotrain_hydra import data as data_mod
    from autotrain_hydra.compat.hydra import compose_config
    from autotrain_hydra.run import prepare
    from autotrain_hydra.trainers.common import Job
    from autotrain_hydra.trainers.preference import load_pairs

    cfg = compose_config([f"trainer={trainer}", f"data.path={data}", "data.prompt_text_column=prompt",
                          "data.text_column=chosen", "data.rejected_text_column=rejected", f"model.name={model_dir}"])
    resolved, _ = prepare(cfg)
    tok = AutoTokenizer.from_pretrained(model_dir)
    set_seed(42)  # a new head (reward) starts as ours does: training.seed before the model is built
    flat = config.pop("padding_free", False)
    common = dict(output_dir=out, max_steps=steps, per_device_train_batch_size=batch, learning_rate=LR,
                  logging_steps=1, report_to="none", save_strategy="no", seed=42,
                  include_num_input_tokens_seen="non_padding", disable_tqdm=True, **cpu_args(precision),
                  **{**RECIPE, **config})
    if flat:
        import autotrain_hydra.attention  # noqa: F401  (registers varlen_sdpa)
    attn = {"attn_implementation": "varlen_sdpa"} if flat else {}
    policy = lambda: AutoModelForCausalLM.from_pretrained(model_dir, **attn)  # noqa: E731
    if trainer == "dpo":
        from trl import DPOConfig, DPOTrainer

        from autotrain_hydra.compat.trl import pretokenized_dpo

        pairs = load_pairs(Job(resolved.cfg, out), tok)  # the pairs as our data step makes them: same tokens
        t = pretokenized_dpo(DPOTrainer)(model=policy(), args=DPOConfig(max_length=1024, **common),
                                         train_dataset=pairs.train, processing_class=tok)
    elif trainer == "orpo":
        from autotrain_hydra.compat.trl import orpo_classes, pretokenized_orpo
        from autotrain_hydra.trainers.orpo import orpo_features

        ORPOConfig, ORPOTrainer = orpo_classes()
        pairs = load_pairs(Job(resolved.cfg, out), tok)
        t = pretokenized_orpo(ORPOTrainer, orpo_features)(
            model=policy(), args=ORPOConfig(max_length=1024, remove_unused_columns=False,
                                            beta=resolved.cfg.trainer.orpo_alpha, **common),  # our λ: same recipe
            train_dataset=pairs.train, processing_class=tok)
    elif trainer == "kto":
        from trl import KTOConfig, KTOTrainer

        from autotrain_hydra.trainers.kto import load_feedback

        rows = load_feedback(Job(resolved.cfg, out))["train"]  # the same text rows ours gives TRL
        t = KTOTrainer(model=policy(), args=KTOConfig(max_length=1024, train_sampling_strategy="sequential",
                                                      **common), train_dataset=rows, processing_class=tok)
    else:  # reward
        from trl import RewardConfig, RewardTrainer

        pairs = load_pairs(Job(resolved.cfg, out), tok, truncate=False)
        rows = pairs.train.map(lambda r: {"chosen_ids": data_mod.scorer_inputs(r["prompt_ids"], r["chosen_ids"], 1024),
                                          "rejected_ids": data_mod.scorer_inputs(r["prompt_ids"], r["rejected_ids"],
                                                                                 1024)}, remove_columns=["prompt_ids"])
        scorer = AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=1, **attn)
        scorer.config.pad_token_id = tok.pad_token_id
        t = RewardTrainer(model=scorer, args=RewardConfig(max_length=None, **common), train_dataset=rows,
                          processing_class=tok)
    if flat:  # TRL's own loop, schedule and batches, with our padding-free forward: the same losses, step by step
        from autotrain_hydra import padding_free

        padding_free.install(t.model, scorer=trainer == "reward")
        padding_free.install(getattr(t, "ref_model", None))
    result = t.train()
    return with_rows(summary(t.state.log_history, result.metrics["train_runtime"], t.state.num_input_tokens_seen),
                     steps * batch)


VARIANTS = {"ours": run_ours, "trl_defaults": run_trl,
            "ours_padded": lambda *a, **k: run_ours(*a, "training.padding_free=false", **k),
            "trl_padding_free": lambda *a, **k: run_trl(*a, padding_free=True, **k),  # same losses as trl_defaults
            # probes of single TRL settings
            "trl_nogc": lambda *a, **k: run_trl(*a, gradient_checkpointing=False, **k),
            "trl_fused": lambda *a, **k: run_trl(*a, optim="adamw_torch_fused", **k)}


def main() -> None:
    p = variant_parser(__doc__.splitlines()[0], steps=12)
    p.add_argument("--trainer", default="dpo", choices=["dpo", "orpo", "kto", "reward"])
    a = p.parse_args()
    if a.child:
        return as_child(lambda out: VARIANTS[a.child](a.trainer, a.model_dir, a.data, a.steps, a.batch_size, out,
                                                      precision=precision_of(a)))
    options = ["--trainer", a.trainer, "--steps", str(a.steps), "--batch-size", str(a.batch_size), "--precision",
               a.precision]
    results = each_variant(__file__, a, make_pairs, "pairs.jsonl", options, lambda run, v, r: (
        f"{a.trainer} run {run + 1} {v:<16} {r['rows_per_s']:6.2f} rows/s {r['tokens_per_s']:>7.0f} tok/s  train "
        f"{r['train_s']:6.1f} s  peak {r['peak_rss_mib']:6.0f} MiB  final loss {r['final_loss']:.4f}"))
    median_ratios(results, [(v, "trl_defaults") for v in results if v != "trl_defaults"], a.trainer,
                  unit="the speed (same rows, steps and batch)", precision=a.precision)


if __name__ == "__main__":
    main()
