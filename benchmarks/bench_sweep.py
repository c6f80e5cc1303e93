"""Per-trial overhead of a sweep: a 4-trial Optuna sweep (trials of ~21 s of training on 2 cores) against one plain
run of the same training, in this process, on the tiny model.

    python benchmarks/bench_sweep.py [--steps 1100]

The plain run's training time is the baseline; the sweep's wall time over 4 trials, less 4 times that training
time, is the overhead (loading, evaluation, saving, the sweeper's own work), reported per trial and as a share of a
trial's training time (the goal: at most 10%). The first trial pays the imports; they are counted once, like the
plain run's, which runs first.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=1100)  # ~21 s of training per trial here
    a = p.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("WANDB_MODE", "offline")
    from autotrain_hydra.__main__ import main as app

    common = [f"training.max_steps={a.steps}", "training.logging_steps=10", "trainer.max_seq_length=128"]
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        started = time.perf_counter()
        app([*common, "output_dir=plain"])
        plain_wall = time.perf_counter() - started
        train_s = json.loads(Path("plain/metrics.json").read_text())["train_runtime_s"]
        started = time.perf_counter()
        app([*common, "features=[sweep]", "sweep.n_trials=4", "sweep.sampler=random",
             "sweep.params={training.lr: [1e-4, 1e-3, 3e-3, 1e-2]}"])
        sweep_wall = time.perf_counter() - started
        trials = sorted(Path("multirun").glob("*/*/*/*/metrics.json"))
        trial_train = [json.loads(t.read_text())["train_runtime_s"] for t in trials]
    per_trial_overhead = (sweep_wall - sum(trial_train)) / len(trial_train)
    plain_overhead = plain_wall - train_s
    print(f"plain run: {plain_wall:.1f} s wall, {train_s:.1f} s training, {plain_overhead:.1f} s around it "
          f"(imports, loading, evaluation, saving)")
    print(f"sweep: {len(trial_train)} trials, {sweep_wall:.1f} s wall, {sum(trial_train):.1f} s training")
    share = 100 * per_trial_overhead / (sum(trial_train) / len(trial_train))
    print(f"overhead per trial: {per_trial_overhead:.2f} s = {share:.0f}% "
          f"of a trial's training time (plain run: {100 * plain_overhead / train_s:.0f}%)")


if __name__ == "__main__":
    main()
