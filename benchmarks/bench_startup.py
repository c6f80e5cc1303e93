"""Start-up latency of the light paths against ``python -c "import trl"`` (the cost every TRL script pays first).

    python benchmarks/bench_startup.py [--repeat 5]

Median wall time of: ``--help``, ``--cfg job``, a validation error (exit 2), ``import autotrain_hydra``, and the
reference ``import trl``; the last lines are each one's ratio to the reference.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time

COMMANDS = {
    "--help": ["-m", "autotrain_hydra", "--help"],
    "--cfg job": ["-m", "autotrain_hydra", "trainer=dpo", "--cfg", "job"],
    "validation error": ["-m", "autotrain_hydra", "trainer=ppo", "training.lr=-1"],
    "autotrain llm --help": ["-c", "from autotrain_hydra.cli import main; main(['llm', '--help'])"],
    "import autotrain_hydra": ["-c", "import autotrain_hydra, autotrain_hydra.run"],
    "import trl (reference)": ["-c", "import trl"],
}


def timed(args, cwd) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=5)
    a = p.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as cwd:
        for name, args in COMMANDS.items():
            timed(args, cwd)  # warm the file cache
            results[name] = statistics.median(timed(args, cwd) for _ in range(a.repeat))
            print(f"{name:<24} {results[name]:6.2f} s (median of {a.repeat})", flush=True)
    ref = results["import trl (reference)"]
    for name, t in results.items():
        if name != "import trl (reference)":
            print(f"{name} / import trl: {t / ref:.2f}x  ({'within' if t <= 1.0 else 'OVER'} the 1.0 s budget)")


if __name__ == "__main__":
    main()
