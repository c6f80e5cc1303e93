"""Time to the best configuration: the same 12-trial Optuna search on the tiny model, without and with pruners
(same sampler, same seed: the same parameters are proposed in the same order), in this process.

    python benchmarks/bench_prune.py [--steps 900] [--trials 12] [--variant PRUNER[:KEY=VALUE,...] ...]

Each trial is an SFT run of --steps steps (about 21 s of training on 2 cores; evaluated every --eval-steps); the
search is the learning rate on a log scale. The sweep without a pruner runs once, then one sweep per --variant.
Printed: each sweep's wall time, its best eval_loss and how many trials were pruned, and for each pruner the ratio
of the wall times (the goal: at least 2x less wall time with pruning, for a best objective at least as good).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path


def sweep(common, name, extra):
    from omegaconf import OmegaConf

    from autotrain_hydra.__main__ import main as app

    started = time.perf_counter()
    app([*common, f"hydra.sweep.dir=multirun/{name}", *extra])
    wall = time.perf_counter() - started
    result = OmegaConf.load(Path("multirun") / name / "optimization_results.yaml")
    return wall, result.best_value, result.n_pruned, result.best_params


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=900)  # a trial of about 21 s of training on 2 cores
    p.add_argument("--eval-steps", type=int, default=25)
    p.add_argument("--trials", type=int, default=12)
    p.add_argument("--variant", nargs="*", default=[
        "median:sweep.pruner_startup_trials=2,sweep.pruner_warmup_steps=100",
        "successive_halving:sweep.pruner_min_resource=150"], help="a pruner and its settings (overrides)")
    a = p.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("WANDB_MODE", "offline")
    common = [f"training.max_steps={a.steps}", "training.logging_steps=50", "trainer.max_seq_length=128",
              "training.eval_strategy=steps", f"training.eval_steps={a.eval_steps}", "features=[sweep]",
              f"sweep.n_trials={a.trials}", "sweep.sampler=random", "sweep.seed=7",
              """sweep.params='{"training.lr": "tag(log, interval(1e-5, 3e-2))"}'"""]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        from autotrain_hydra.__main__ import main as app

        app(["training.max_steps=1", "output_dir=warm-up"])  # the imports and caches, paid before any sweep
        results.append(("no pruner", sweep(common, "plain", [])))
        for n, variant in enumerate(a.variant):
            pruner, _, settings = variant.partition(":")
            extra = [f"sweep.pruner={pruner}", *[kv for kv in settings.split(",") if kv]]
            results.append((variant, sweep(common, f"pruned{n}", extra)))
    for name, (wall, best, n_pruned, params) in results:
        print(f"{name:<70} {wall:7.1f} s wall  best eval_loss {best:.4f}  pruned {n_pruned}/{a.trials}  "
              f"best params {dict(params)}")
    plain = results[0][1]
    for name, (wall, best, _, _) in results[1:]:
        print(f"time to the best config, {name}: {plain[0] / wall:.2f}x less wall time; best objective "
              f"{'as good or better' if best <= plain[1] + 1e-9 else 'worse'} ({best:.4f} vs {plain[1]:.4f})")


if __name__ == "__main__":
    main()
