"""The Optuna internals the sweeps rely on, all in one place (optuna 2.10).

- ``optuna.trial.Trial(study, trial_id)``: a handle on a trial another process asked for. The sweeper asks for a
  trial and launches it; the run (in the sweeper's process, or another one on the same storage) reports its
  evaluations to that trial (``Trial.report``) and asks the study's pruner (``Trial.should_prune``). Optuna documents
  the class, not its constructor.
- ``BaseStorage.get_trial_id_from_study_id_trial_number``: a trial's storage id from its number.
- optuna-dashboard 0.14's ``_importance.FanovaImportanceEvaluator``: the evaluator its parameter-importance view
  makes. optuna 2.10's fANOVA fails on current numpy ("setting an array element with a sequence": the view answered
  400); ``dashboard_importances`` makes it use the random-forest evaluator the sweep's report uses.

- ``HyperbandPruner._get_bracket_id`` (and the budgets it reads): replaced by a CRC32 of the study name and trial
  number (``stable_hyperband``): optuna's uses Python's salted ``hash``, so each process put a trial in another
  bracket.

``tests/compat/test_optuna.py`` checks each against the installed optuna.
"""

from __future__ import annotations

import functools

from typing import Any, Optional


def pruner(cfg: Any) -> Any:
    """The Optuna pruner of ``sweep.pruner`` and its settings, None for none. Successive halving's and Hyperband's
    first rung (``sweep.pruner_min_resource``, null) is the first evaluation's step (``training.eval_steps``) where
    the run evaluates every N steps, else step 1: optuna's own "auto" (a hundredth of the longest trial) falls before
    any evaluation."""
    import optuna

    sweep = cfg.sweep
    name = sweep.pruner
    if name in (None, "none"):
        return None
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=int(sweep.pruner_startup_trials),
                                           n_warmup_steps=int(sweep.pruner_warmup_steps))
    if name == "percentile":
        return optuna.pruners.PercentilePruner(float(sweep.pruner_percentile),
                                               n_startup_trials=int(sweep.pruner_startup_trials),
                                               n_warmup_steps=int(sweep.pruner_warmup_steps))
    minimum = sweep.pruner_min_resource
    if minimum is None:
        t = cfg.training
        minimum = int(t.eval_steps) if t.eval_strategy == "steps" and t.eval_steps else 1
    if name == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=int(minimum),
                                                      reduction_factor=int(sweep.pruner_reduction_factor))
    steps = int(cfg.training.max_steps or 0)  # the brackets from the run's length when it is known, so that every
    # trial's pruner (each run makes its own) sizes them alike; else optuna's "auto" (the first complete trial's)
    return stable_hyperband()(min_resource=int(minimum), max_resource=steps if steps > minimum else "auto",
                              reduction_factor=int(sweep.pruner_reduction_factor))


@functools.lru_cache(maxsize=None)
def stable_hyperband() -> type:
    """optuna 2.10's HyperbandPruner with a trial's bracket the same in every process: optuna puts trial N in a
    bracket by Python's ``hash`` of the study name and N, which is salted per process (PYTHONHASHSEED), so that the
    workers of one study (and a rerun of a trial) each saw other brackets. Here by CRC32: the same everywhere.
    Overrides the private ``_get_bracket_id`` (its budgets: ``_n_brackets``, ``_trial_allocation_budgets``,
    ``_total_trial_allocation_budget``), checked by tests/compat/test_optuna.py."""
    import zlib

    import optuna

    class StableHyperbandPruner(optuna.pruners.HyperbandPruner):
        def _get_bracket_id(self, study: Any, trial: Any) -> int:
            if len(self._pruners) == 0:
                return 0
            n = zlib.crc32(f"{study.study_name}_{trial.number}".encode("utf-8")) % self._total_trial_allocation_budget
            for bracket_id in range(self._n_brackets):
                n -= self._trial_allocation_budgets[bracket_id]
                if n < 0:
                    return bracket_id
            raise AssertionError("unreachable: the budgets add up to the total")

    return StableHyperbandPruner


def trial_id(storage: Any, study_name: str, number: int) -> int:
    """The storage's id of trial ``number`` of the study ``study_name``."""
    return storage.get_trial_id_from_study_id_trial_number(storage.get_study_id_from_name(study_name), number)


def engine_kwargs(url: str) -> dict:
    """sqlite: wait for another process's writes (the sweeper's heartbeats and tells, a trial's reports, other
    workers) rather than fail with "database is locked"."""
    return {"connect_args": {"timeout": 60}} if str(url).startswith("sqlite") else {}


def running_trial(storage_url: str, study_name: str, number: int, study_pruner: Optional[Any]) -> Any:
    """A handle on trial ``number`` of the study, asked for by the sweeper and running here: ``report(value, step)``,
    ``should_prune()`` (the study's pruner, ``study_pruner``)."""
    import optuna

    storage = optuna.storages.RDBStorage(storage_url, engine_kwargs=engine_kwargs(storage_url))
    study = optuna.load_study(study_name=study_name, storage=storage, pruner=study_pruner)
    return optuna.trial.Trial(study, trial_id(storage, study_name, number))


def dashboard_importances() -> None:
    """optuna-dashboard's importance view through the mean-decrease-impurity evaluator (see the module docstring)."""
    from optuna.importance import MeanDecreaseImpurityImportanceEvaluator
    from optuna_dashboard import _importance

    _importance.FanovaImportanceEvaluator = lambda *a, **k: MeanDecreaseImpurityImportanceEvaluator(seed=0)
