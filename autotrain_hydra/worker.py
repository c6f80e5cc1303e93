"""One rank of a launcher=multiprocess|multinode run: ``accelerate launch ... -m autotrain_hydra.worker <spec>``.

The spec (written by ``autotrain_hydra.launch``) holds the resolved config and the output dir: a rank composes
nothing and resolves no run dir of its own. Every rank trains; rank 0 alone writes the model, checkpoints and its
log lines to the run's train.log, and leaves its metrics (or its error) in the result file for the launching
process. Log lines say which rank wrote them.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import traceback
from typing import Any, Dict


def setup_logging(rank: int, world: int, log_file: Any) -> None:
    """``[rank R/W]`` on every line; rank 0 logs INFO (also to the run's train.log), the others warnings and their
    own start and end."""
    fmt = logging.Formatter(f"[%(asctime)s][rank {rank}/{world}][%(name)s][%(levelname)s] - %(message)s")
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    stream = logging.StreamHandler(sys.stderr)
    stream.setFormatter(fmt)
    root.addHandler(stream)
    if rank == 0 and log_file:
        file = logging.FileHandler(log_file, mode="a", encoding="utf-8")
        file.setFormatter(fmt)
        root.addHandler(file)
    root.setLevel(logging.INFO if rank == 0 else logging.WARNING)  # the other ranks would repeat rank 0's lines
    logging.getLogger(__name__).setLevel(logging.INFO)  # but every rank says when it starts and ends
    from autotrain_hydra.secrets import guard_logging

    guard_logging()  # no line of a rank's log carries a secret


def _error_result(e: BaseException, rank: int) -> Dict[str, Any]:
    from autotrain_hydra.schema.errors import ConfigError

    report = [i.to_dict() for i in e.report.issues] if isinstance(e, ConfigError) else None
    return {"ok": False, "rank": rank, "error_type": type(e).__name__, "error_module": type(e).__module__,
            "message": str(e), "report": report, "traceback": traceback.format_exc()}


def main(spec_path: str) -> int:
    with open(spec_path, encoding="utf-8") as f:
        spec = json.load(f)
    from autotrain_hydra.processes import rank_and_world

    rank, world = rank_and_world()
    setup_logging(rank, world, spec.get("log_file"))
    log = logging.getLogger(__name__)

    from omegaconf import OmegaConf

    from autotrain_hydra.run import end_run, objective_of, train_here, wandb_summary, write_json_atomic
    from autotrain_hydra.trainers.common import Job

    job = Job(cfg=OmegaConf.create(spec["config"]), output_dir=spec["output_dir"])
    log.info("rank %d of %d: training %s on %s into %s", rank, world, job.cfg.trainer.name, job.cfg.model.name,
             job.output_dir)
    try:
        metrics = train_here(job)
    except BaseException as e:
        log.error("rank %d failed: %s", rank, e)
        # every failing rank leaves its error: the launcher may stop rank 0 before rank 0 can write its own
        write_json_atomic(spec["result"] if rank == 0 else f"{spec['result']}.rank{rank}", _error_result(e, rank))
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        return 1
    log.info("rank %d of %d: training done", rank, world)
    if rank == 0:
        summary = {**job.metrics, **metrics}
        _, summary["objective"] = objective_of(job.cfg, summary)  # None (left out): not known yet on this rank
        wandb_summary(job.cfg, summary)
        write_json_atomic(spec["result"], {"ok": True, "metrics": metrics, "job_metrics": job.metrics,
                                           "notes": job.notes})
    end_run(job.cfg)  # the W&B run (rank 0's) ends with its summary written
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
