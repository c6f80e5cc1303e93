"""Pruned sweeps (``sweep.pruner``): a trial reports its metric to its Optuna trial as it trains, and stops when the
study's pruner says it does worse than the trials before it did at that step.

- **What is reported**: the sweep's metric (``sweep.metric``) at each evaluation of the Trainer-based trainers (the
  eval metrics of a log); a policy's metric (``eval_mean_reward_after``: measured only after training) by the mean
  reward it is trained for, at each logged iteration (ppo: the rollouts'; grpo: TRL's ``reward``).
- **A pruned trial** stops at that step (the Trainer's ``should_training_stop``; ppo's loop), writes its results as a
  run does (model, metrics with ``pruned_at_step``), then ends with ``errors.TrialPruned``: the sweeper records it
  PRUNED. It counts in the study's ``n_trials``.
- Only in a trial of the Optuna sweeper with a pruner: the run finds its study and trial number in its own Hydra
  config (``compat.hydra.sweep_study``: nothing is passed to it) and loads its trial from that storage
  (``compat.optuna.running_trial``), in the sweeper's process or another one. A rerun of a trial's config is a
  single run: it reports nothing.
- A reporting error (a database that does not answer) is said once and the trial trains on, unpruned; the last
  step is never pruned (a trial that trained to its end completes).
"""

from __future__ import annotations

import logging
import math
from typing import Any, Dict, Optional, Tuple

log = logging.getLogger(__name__)

POLICY_SIGNALS = ("eval_reward", "reward", "mean_reward")  # a policy's reward as it trains, by trainer


class Reporter:
    """The running trial: ``report(logs, step)`` sends the sweep's metric when ``logs`` has it, and says whether the
    pruner stops the trial there (``pruned_at``: (step, value) once it did)."""

    def __init__(self, cfg: Any, storage: str, study_name: str, number: int) -> None:
        from autotrain_hydra.compat import optuna as compat

        self.metric = str(cfg.sweep.metric)
        self.number = number
        self.trial = compat.running_trial(storage, study_name, number, compat.pruner(cfg))
        self.pruned_at: Optional[Tuple[int, float]] = None
        self.broken = False
        self._last_step = -1

    def signal(self, logs: Dict[str, Any]) -> Optional[float]:
        names = (self.metric,) + (POLICY_SIGNALS if self.metric.startswith("eval_mean_reward") else ()) + (
            ("loss",) if self.metric == "train_loss" else ())
        for name in names:
            value = logs.get(name)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                return float(value)
        return None

    def report(self, logs: Dict[str, Any], step: int, last: bool = False) -> bool:
        """Report ``logs``'s metric at ``step``; True when the trial is pruned there (never at its ``last`` step)."""
        value = self.signal(logs)
        if value is None or step <= self._last_step or self.pruned_at is not None or self.broken or last:
            return self.pruned_at is not None
        self._last_step = step
        try:
            self.trial.report(value, step)
            prune = self.trial.should_prune()
        except Exception as e:  # the study's database did not answer: the trial trains on, unpruned
            self.broken = True
            log.warning("sweep: trial %d could not report to its study (%s: %s): it is not pruned", self.number,
                        type(e).__name__, str(e).splitlines()[0][:200] if str(e) else "")
            return False
        if prune:
            self.pruned_at = (step, value)
            log.info("sweep: trial %d pruned at step %d (%s %.5g: worse than the trials before it at that step)",
                     self.number, step, self.metric, value)
            return True
        return False

    def record(self, metrics: Dict[str, Any]) -> None:
        """A pruned trial's metrics say so (``pruned_at_step``, ``pruned_value``)."""
        if self.pruned_at is not None:
            metrics["pruned_at_step"], metrics["pruned_value"] = self.pruned_at


def reporter(cfg: Any) -> Optional[Reporter]:
    """The running trial's reporter, in a trial of an Optuna sweep with a pruner (else None)."""
    from autotrain_hydra.compat.hydra import sweep_study
    from autotrain_hydra.paths import default_study_name
    from autotrain_hydra.processes import rank_and_world

    s = cfg.sweep
    if not s.enabled or s.backend != "optuna" or s.pruner in (None, "none"):
        return None
    study = sweep_study()
    if study is None:
        return None
    storage, study_name, number = study
    rank, world = rank_and_world()
    if world > 1:  # every process would have to take the same decision at the same step
        if rank == 0:
            log.warning("sweep: trial %s runs in several processes: it is not pruned (sweep.pruner applies to "
                        "trials of one process)", number)
        return None
    try:
        return Reporter(cfg, storage, study_name or default_study_name(cfg.trainer.name), number)
    except Exception as e:  # the study cannot be read from here: the trial trains, unpruned
        from autotrain_hydra.secrets import redact_url

        log.warning("sweep: trial %s cannot reach its study in %s (%s): it is not pruned", number,
                    redact_url(storage), type(e).__name__)
        return None


def trainer_callback(reporter: Reporter) -> Any:
    """A TrainerCallback that reports each log (the evaluations; a policy's reward) and stops a pruned trial."""
    from transformers import TrainerCallback

    class Prune(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            last = bool(state.max_steps) and state.global_step >= state.max_steps
            if logs and reporter.report(logs, state.global_step, last):
                control.should_training_stop = True

    return Prune()
