"""Time to the best configuration: the same 12-trial Optuna search on the tiny model, without and with a pruner
(same sampler, same seed: the same parameters are proposed in the same order), in this process.

    python benchmarks/bench_prune.py [--steps 900] [--trials 12] [--pruner percentile] [--set KEY=VALUE ...]

Each trial is an SFT run of --steps steps (evaluated every --eval-steps); the search is the learning rate on a log
scale. Printed: each sweep's wall time, its best eval_loss and how many trials were pruned, and the ratio of the
wall times (the goal: at least 2x less wall time with pruning, for a best objective at least as good).
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
    p.add_argument("--pruner", default="percentile")
    p.add_argument("--set", nargs="*", default=["sweep.pruner_percentile=25", "sweep.pruner_startup_trials=3"],
                   help="the pruner's settings (overrides)")
    a = p.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("WANDB_MODE", "offline")
    common = [f"training.max_steps={a.steps}", "training.logging_steps=50", "trainer.max_seq_length=128",
              "training.eval_strategy=steps", f"training.eval_steps={a.eval_steps}", "features=[sweep]",
              f"sweep.n_trials={a.trials}", "sweep.sampler=random", "sweep.seed=7",
              """sweep.params='{"training.lr": "tag(log, interval(1e-5, 3e-2))"}'"""]
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        from autotrain_hydra.__main__ import main as app

        app(["training.max_steps=1", "output_dir=warm-up"])  # the imports and caches, paid before either sweep
        plain = sweep(common, "plain", [])
        pruned = sweep(common, "pruned", [f"sweep.pruner={a.pruner}", *a.set])
    for name, (wall, best, n_pruned, params) in (("no pruner", plain), (a.pruner, pruned)):
        print(f"{name:<20} {wall:7.1f} s wall  best eval_loss {best:.4f}  pruned {n_pruned}/{a.trials}  "
              f"best params {dict(params)}")
    print(f"time to the best config: {plain[0] / pruned[0]:.2f}x less wall time with {a.pruner}; best objective "
          f"{'as good or better' if pruned[1] <= plain[1] + 1e-9 else 'worse'} ({pruned[1]:.4f} vs {plain[1]:.4f})")


if __name__ == "__main__":
    main()
