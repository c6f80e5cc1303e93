"""validate → load data and models → build the trainer → train → evaluate → save; returns the objective.

``run(cfg)`` is usable without Hydra's app (tests, notebooks); ``run_task(cfg)`` is what ``@hydra.main`` calls:
it adds the overrides and run dir Hydra knows, and turns errors into a clear message and an exit code.
"""

from __future__ import annotations

import importlib
import json
import logging
import math
import os
import sys
import time
from typing import Any, Dict, Iterable, Optional, Tuple

from omegaconf import DictConfig, OmegaConf

from autotrain_hydra import paths
from autotrain_hydra.schema.errors import EXIT_CONFIG_ERROR, ConfigError, Report
from autotrain_hydra.schema.rules import check_output_dir, resolve_data_sample, resuming, validate

log = logging.getLogger("autotrain_hydra")

EXIT_RUN_ERROR = 1
EXIT_STOPPED = 130  # as a shell reports a process stopped by Ctrl-C


def prepare(cfg: DictConfig, overrides: Iterable[str] = ()) -> Report:
    """Fill the built-in sample data where none is given, then check every rule. Raises ConfigError."""
    note = resolve_data_sample(cfg)
    if note:
        log.info(note)
    report = validate(cfg, overrides)
    for issue in report.warnings:
        log.warning(issue.render())
    report.raise_if_errors()
    return report


def run(cfg: DictConfig, overrides: Iterable[str] = (), run_dir: Optional[str] = None) -> Optional[float]:
    """Run one training job; returns the objective: ``sweep.metric`` in a sweep, else the eval loss when there is
    eval data, else the final train loss."""
    cfg = cfg.copy()
    report = prepare(cfg, overrides)
    if cfg.validate_only:
        print(f"configuration is valid: trainer={cfg.trainer.name}, {len(report.warnings)} warning(s)")
        return None
    if cfg.sweep.enabled and run_dir is None and cfg.output_dir is None:
        single = Report()
        single.error("features=[sweep] runs through the command line (python -m autotrain_hydra features=[sweep] "
                     "...), which makes it a Hydra multirun", "sweep.enabled")
        single.raise_if_errors()

    output_dir = os.path.abspath(os.path.expanduser(cfg.output_dir or run_dir or "outputs/run"))
    in_use = Report()  # the Hydra run dir too (two runs started in the same second share one)
    check_output_dir(in_use, output_dir, cfg.overwrite_output_dir or resuming(cfg))
    in_use.raise_if_errors()
    os.makedirs(output_dir, exist_ok=True)
    started = time.time()

    from autotrain_hydra.trainers.common import Job, hardware_check

    hardware_check(cfg)  # before any model is loaded
    plan = None
    if cfg.launcher.name != "local":
        from autotrain_hydra import launch

        plan = launch.plan(cfg)  # this machine can run it, and the rendezvous is known: before any model is loaded
    job = Job(cfg=cfg, output_dir=output_dir)
    before = None
    if cfg.eval.enabled:
        _holdout_for_eval(cfg)  # before the trainer loads its data
        before = _evaluate_before(cfg)
    trained = train_here(job) if plan is None else launch.train(job, plan)
    if plan is not None and plan.machine_rank != 0:  # machine 0 writes the metrics, plots and model card
        log.info("machine %d of %d: training done; machine 0 writes the results", plan.machine_rank,
                 plan.num_machines)
        return None
    metrics = {**job.metrics, **trained}
    if cfg.eval.enabled:
        metrics.update(_evaluate_after(cfg, output_dir, metrics, before))

    name, objective = objective_of(cfg, metrics)
    if objective is None:
        raise RuntimeError(f"the run ended without a finite {name} ({metrics.get(name)})")
    metrics["objective"] = objective
    metrics["objective_name"] = name
    if plan is None:
        wandb_summary(cfg, metrics)
    elif "wandb" in list(cfg.report_to) and cfg.eval.enabled:
        log.info("W&B: rank 0's run has the training metrics and the objective; the evaluation metrics of a "
                 "launched run are in metrics.json only (the W&B run ended with rank 0)")
    metrics["wall_time_s"] = round(time.time() - started, 2)
    write_outputs(job, metrics, report)
    log.info("trained %s on %s: %s=%.4f; model saved in %s", cfg.trainer.name, cfg.model.name,
             metrics["objective_name"], objective, output_dir)
    return float(objective)


def objective_of(cfg: DictConfig, metrics: Dict[str, Any]) -> Tuple[str, Optional[float]]:
    """(name, value) of what the run returns: ``sweep.metric`` in a sweep, else the eval loss when there is eval
    data, else the final train loss; the value is None unless it is a finite number."""
    if cfg.sweep.enabled:
        name = cfg.sweep.metric
    else:
        name = "eval_loss" if "eval_loss" in metrics else "train_loss"
    value = metrics.get(name)
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        return name, None
    return name, value


def wandb_summary(cfg: DictConfig, metrics: Dict[str, Any]) -> None:
    """With report_to=[wandb]: every number of the run in its W&B summary (a W&B sweep reads its metric there).
    The run is this process's: the Trainer's, in a one-process run or in rank 0 of a launched one."""
    if "wandb" in list(cfg.report_to):
        import wandb

        if wandb.run is not None:
            wandb.run.summary.update({k: v for k, v in metrics.items() if isinstance(v, (int, float))})


def train_here(job: Any) -> Dict[str, Any]:
    """The training step in this process (launcher=local, or one rank of a launched run): seed, then the trainer
    module's ``train``, which saves the model into the output dir; returns its metrics."""
    import datasets
    from transformers import set_seed

    datasets.disable_progress_bars()
    set_seed(job.cfg.training.seed)  # before any model is built: new heads (reward score, LoRA) start the same
    trainer_module = importlib.import_module(f"autotrain_hydra.trainers.{job.cfg.trainer.name}")
    return trainer_module.train(job)


def _holdout_for_eval(cfg: DictConfig) -> None:
    """Enhanced evaluation without eval data: hold out eval.holdout_fraction of the training rows (said in the log)."""
    d = cfg.data
    if not (cfg.eval.dataset_path or d.valid_path or d.valid_split or d.valid_fraction):
        d.valid_fraction = cfg.eval.holdout_fraction
        log.info("enhanced evaluation: no eval data given, holding out %s of the training rows", d.valid_fraction)


def _evaluate_before(cfg: DictConfig) -> Optional[Dict[str, float]]:
    from autotrain_hydra.features import evaluation
    from autotrain_hydra.models import resolve_model_name
    from autotrain_hydra.schema.rules import GENERATIVE

    if not cfg.eval.before_training or cfg.trainer.name not in GENERATIVE:
        return None
    return evaluation.evaluate_generator(resolve_model_name(cfg.model.name), cfg)


def _evaluate_after(cfg: DictConfig, output_dir: str, trained: Dict[str, Any],
                    before: Optional[Dict[str, float]]) -> Dict[str, Any]:
    from autotrain_hydra.features import evaluation
    from autotrain_hydra.schema.rules import GENERATIVE

    if cfg.trainer.name in GENERATIVE:
        predictions = os.path.join(output_dir, "predictions.jsonl") if cfg.eval.save_predictions else None
        after = evaluation.evaluate_generator(output_dir, cfg, predictions)
    else:
        after = evaluation.from_trainer_metrics(cfg, trained)
    if cfg.eval.benchmark:  # a string or a list: benchmark.entries reads both
        from autotrain_hydra.features.benchmark import run_benchmarks
        from autotrain_hydra.models import resolve_model_name

        after.update(run_benchmarks(output_dir, cfg.eval.benchmark, cfg.eval.batch_size, cfg.eval.max_samples,
                                    base_model=resolve_model_name(cfg.model.name)))
    print(evaluation.table(after, before))
    out: Dict[str, Any] = dict(after)
    if before:
        out.update({k.replace("eval/", "eval_before/", 1): v for k, v in before.items()})
    return out


def write_json_atomic(path: str, data: Any) -> None:
    with paths.written_whole(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2, default=str)


def write_outputs(job: Any, metrics: Dict[str, Any], report: Report) -> None:
    out = job.output_dir
    metrics = dict(metrics, warnings=[i.message for i in report.warnings], notes=job.notes)
    write_json_atomic(os.path.join(out, "metrics.json"), metrics)
    with open(os.path.join(out, "config.yaml"), "w", encoding="utf-8") as f:
        f.write(OmegaConf.to_yaml(job.cfg, resolve=True))
    _plot_loss(out, metrics.get("history") or {})
    _model_card(job, metrics)


def _plot_loss(out: str, history: Dict[str, Any]) -> None:
    if not history.get("train"):
        return
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # plots are a nicety
        return
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, points in history.items():
        if points:
            ax.plot([p[0] for p in points], [p[1] for p in points], marker="o" if name == "eval" else None,
                    label=f"{name} loss" if name in ("train", "eval", "distill") else name)
    ax.set_xlabel("step (ppo: iteration)")
    ax.set_ylabel("value")
    ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(out, "loss.png"), dpi=80)
    plt.close(fig)


def _model_card(job: Any, metrics: Dict[str, Any]) -> None:
    cfg = job.cfg
    kind = "a sequence-classification scorer" if cfg.trainer.name == "reward" else "a causal language model"
    lines = [
        f"# {os.path.basename(job.output_dir)}",
        "",
        f"Fine-tuned with autotrain_hydra, trainer `{cfg.trainer.name}`: {kind}.",
        "",
        f"- base model: `{cfg.model.name}`",
        f"- data: `{cfg.data.path}`",
        f"- peft: `{cfg.peft.method}`" + (f" (r={cfg.peft.lora_r}, alpha={cfg.peft.lora_alpha})"
                                          if cfg.peft.method == "lora" else ""),
        f"- lr {cfg.training.lr}, epochs {cfg.training.epochs}, batch size {cfg.training.batch_size}, "
        f"steps {metrics.get('global_step')}",
        f"- {metrics['objective_name']}: {metrics['objective']:.4f}",
        "",
        "The full configuration is in `config.yaml`; metrics in `metrics.json`.",
        "",
    ]
    with open(os.path.join(job.output_dir, "README.md"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines))


# ----------------------------------------------------------------------------------------------- Hydra task
def _hydra_context() -> tuple:
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        hc = HydraConfig.get()
        job_num = hc.job.num if hc.mode == RunMode.MULTIRUN else None
        return list(hc.overrides.task), hc.runtime.output_dir, job_num
    except ValueError:  # not running under Hydra
        return [], None, None


def run_task(cfg: DictConfig) -> Optional[float]:
    """The @hydra.main task: clear messages and exit codes (2: configuration, 1: run) instead of tracebacks
    (set HYDRA_FULL_ERROR=1 for the traceback)."""
    overrides, run_dir, job_num = _hydra_context()
    full = os.environ.get("HYDRA_FULL_ERROR") == "1"
    sweeping = job_num is not None
    if sweeping and cfg.output_dir:  # one output dir per trial, numbered like Hydra's
        cfg = cfg.copy()
        cfg.output_dir = os.path.join(cfg.output_dir, str(job_num))
    try:
        return run(cfg, overrides, run_dir)
    except KeyboardInterrupt as e:  # Ctrl-C, or SIGTERM while launched processes train
        if sweeping:  # the sweeper marks the trial FAIL and stops
            raise
        print(f"Stopped ({e or 'Ctrl-C'}) before the run finished; its complete checkpoints are kept.\n"
              "    to go on: the same command with training.resume_from_checkpoint=true", file=sys.stderr)
        sys.exit(EXIT_STOPPED)
    except Exception:
        if sweeping:  # the sweeper records the trial as failed and goes on
            log.exception("trial %s failed", job_num)
            raise
        return _report_and_exit(full)
    finally:  # every run, not only trials: a W&B run left open would swallow the next run of this process
        end_run(cfg)


def end_run(cfg: DictConfig) -> None:
    """Runs of one process (sweep trials, notebooks, tests) must not share state: finish the tracker run and free
    memory after each."""
    import gc

    if "wandb" in list(cfg.report_to):
        import wandb

        wandb.finish()
    gc.collect()
    if "torch" in sys.modules:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def _report_and_exit(full: bool):
    e = sys.exc_info()[1]
    if isinstance(e, ConfigError):
        if full:
            raise
        print(e.report.render(), file=sys.stderr)
        sys.exit(EXIT_CONFIG_ERROR)
    from autotrain_hydra.data import DataError
    from autotrain_hydra.features.benchmark import BenchmarkError
    from autotrain_hydra.models import ModelLoadError
    from autotrain_hydra.trainers.common import CheckpointError, HardwareError, NumericalError

    if full or not isinstance(e, (DataError, ModelLoadError, HardwareError, BenchmarkError, NumericalError,
                                  CheckpointError)):
        raise
    print(f"Error: {e}", file=sys.stderr)
    sys.exit(EXIT_CONFIG_ERROR if isinstance(e, (DataError, HardwareError, CheckpointError)) else EXIT_RUN_ERROR)
