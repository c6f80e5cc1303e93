"""What launcher=multiprocess costs against launcher=local, for the same run and the same global batch.

    python benchmarks/bench_launch.py [--steps 40] [--processes 2]

Runs ``python -m autotrain_hydra`` (SFT, tiny model, sample chat data) twice: in one process with batch B, and in
N processes with batch B/N each (``accelerate launch``; gloo on a CPU, NCCL on GPUs). Prints, for each, the wall
time of the whole command, the training time the Trainer measured, and the rest (interpreter starts, imports, data,
saving: the fixed cost of launching); then the ratios multiprocess / local, and the final losses (equal when the data
parallelism is exact). On a CPU the N processes share the same cores, so training cannot get faster there: the figure
to read is the fixed cost. On N GPUs the training time is the one that should shrink.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run(args, out: Path) -> dict:
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "autotrain_hydra", *args, f"output_dir={out}"], capture_output=True,
                          text=True)
    wall = time.perf_counter() - started
    if proc.returncode:
        sys.exit(f"failed: {' '.join(args)}\n{proc.stderr[-3000:]}")
    metrics = json.loads((out / "metrics.json").read_text())
    return {"wall": wall, "train": metrics["train_runtime_s"], "loss": metrics["train_loss"]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--processes", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=4, help="the global batch")
    a = p.parse_args()
    if a.batch_size % a.processes:
        sys.exit("--batch-size must be a multiple of --processes")
    common = [f"training.max_steps={a.steps}", "training.logging_steps=1", "training.save_steps=null",
              "data.valid_path=null", "data.valid_fraction=null"]
    with tempfile.TemporaryDirectory() as tmp:
        local = run([*common, f"training.batch_size={a.batch_size}"], Path(tmp, "local"))
        multi = run([*common, f"training.batch_size={a.batch_size // a.processes}", "launcher=multiprocess",
                     f"launcher.num_processes={a.processes}"], Path(tmp, "multi"))
    for name, r in (("launcher=local", local), (f"launcher=multiprocess x{a.processes}", multi)):
        rest = r["wall"] - r["train"]
        print(f"{name:<28} wall {r['wall']:6.2f} s  training {r['train']:6.2f} s  rest {rest:6.2f} s  "
              f"final loss {r['loss']:.5f}")
    print(f"wall multiprocess / local: {multi['wall'] / local['wall']:.2f}x")
    print(f"training multiprocess / local: {multi['train'] / local['train']:.2f}x")
    print(f"fixed cost of launching: {(multi['wall'] - multi['train']) - (local['wall'] - local['train']):+.2f} s")
    print(f"final loss difference: {abs(multi['loss'] - local['loss']):.2e}")


if __name__ == "__main__":
    main()
