"""Pruned sweeps (``sweep.pruner``): a trial reports its metric to its Optuna trial as it trains, and stops when the
study's pruner says it does worse than the trials before it did at that step.

- **What is reported**: the sweep's metric (``sweep.metric``) at each evaluation of the Trainer-based trainers (the
  eval metrics of a log); a policy's metric (``eval_mean_reward_after``: measured only after training) by the mean
  reward it is trained for, at each logged iteration (ppo: the rollouts'; grpo: TRL's ``reward``).
- **A pruned trial** stops at that step (the Trainer's ``should_training_stop``; ppo's loop), writes its results as a
  run does (model, metrics with ``pruned_at_step``), then ends with ``errors.TrialPruned``: the sweeper records it
  PRUNED. It counts in the study's ``n_trials``.
- Only in a trial of an Optuna sweep with a pruner: the sweeper gives each trial ``sweep.trial`` (its number) and the
  study's storage; the run loads its trial from that storage (``compat.optuna.running_trial``), in the sweeper's
  process or another one.
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

    def __init__(self, cfg: Any) -> None:
        from autotrain_hydra.compat import optuna as compat

        s = cfg.sweep
        self.metric = str(s.metric)
        self.trial = compat.running_trial(str(s.storage), str(s.study_name), int(s.trial), compat.pruner(s))
        self.number = int(s.trial)
        self.pruned_at: Optional[Tuple[int, float]] = None
        self._last_step = -1

    def signal(self, logs: Dict[str, Any]) -> Optional[float]:
        names = (self.metric,) + (POLICY_SIGNALS if self.metric.startswith("eval_mean_reward") else ())
        for name in names:
            value = logs.get(name)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                return float(value)
        return None

    def report(self, logs: Dict[str, Any], step: int) -> bool:
        value = self.signal(logs)
        if value is None or step <= self._last_step or self.pruned_at is not None:
            return self.pruned_at is not None
        self._last_step = step
        self.trial.report(value, step)
        if self.trial.should_prune():
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
    from autotrain_hydra.processes import rank_and_world

    s = cfg.sweep
    if not s.enabled or s.backend != "optuna" or s.trial is None or s.pruner in (None, "none") or not s.storage:
        return None
    if rank_and_world()[1] > 1:  # every process would have to take the same decision at the same step
        log.warning("sweep: trial %s runs in several processes: it is not pruned (sweep.pruner applies to trials "
                    "of one process)", s.trial)
        return None
    return Reporter(cfg)


def trainer_callback(reporter: Reporter) -> Any:
    """A TrainerCallback that reports each log (the evaluations; a policy's reward) and stops a pruned trial."""
    from transformers import TrainerCallback

    class Prune(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and reporter.report(logs, state.global_step):
                control.should_training_stop = True

    return Prune()
