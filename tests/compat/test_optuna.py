"""The Optuna (and optuna-dashboard) internals autotrain_hydra.compat.optuna relies on: fails loudly on an upgrade."""

import os

import optuna

from autotrain_hydra.compat import optuna as compat
from tests.helpers import compose

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_a_running_trial_is_reached_from_another_storage_handle_and_pruned(tmp_path):
    url = f"sqlite:///{tmp_path / 'o.db'}"
    cfg = compose("features=[sweep]", "sweep.pruner=median", "sweep.pruner_startup_trials=1")
    study = optuna.create_study(study_name="s", storage=url, pruner=compat.pruner(cfg))
    first = study.ask()
    first.report(1.0, 2)
    study.tell(first, 1.0)
    second = study.ask()
    trial = compat.running_trial(url, "s", second.number, compat.pruner(cfg))  # as a run in another process
    trial.report(5.0, 2)
    assert trial.should_prune()
    assert optuna.load_study(study_name="s", storage=url).trials[1].intermediate_values == {2: 5.0}


def test_every_pruner_setting_makes_an_optuna_pruner():
    kinds = {"median": optuna.pruners.MedianPruner, "percentile": optuna.pruners.PercentilePruner,
             "successive_halving": optuna.pruners.SuccessiveHalvingPruner, "hyperband": optuna.pruners.HyperbandPruner}
    for name, kind in kinds.items():
        assert isinstance(compat.pruner(compose("features=[sweep]", f"sweep.pruner={name}")), kind)
    assert compat.pruner(compose("features=[sweep]")) is None
    median = compat.pruner(compose("features=[sweep]", "sweep.pruner=median", "sweep.pruner_startup_trials=3",
                                   "sweep.pruner_warmup_steps=7"))
    assert (median._n_startup_trials, median._n_warmup_steps) == (3, 7)
    halving = compat.pruner(compose("features=[sweep]", "sweep.pruner=successive_halving", "sweep.pruner_reduction_factor=4",
                                    "training.eval_strategy=steps", "training.eval_steps=25"))
    assert (halving._min_resource, halving._reduction_factor) == (25, 4)  # the first rung: the first evaluation
    band = compat.pruner(compose("features=[sweep]", "sweep.pruner=hyperband", "training.max_steps=900",
                                 "training.eval_strategy=steps", "training.eval_steps=25"))
    assert (band._min_resource, band._max_resource) == (25, 900)  # every trial's pruner sizes the brackets alike


def test_the_dashboards_importance_evaluator_is_replaced(monkeypatch):
    from optuna_dashboard import _importance

    assert hasattr(_importance, "FanovaImportanceEvaluator")  # what the dashboard's view makes
    monkeypatch.setattr(_importance, "FanovaImportanceEvaluator", _importance.FanovaImportanceEvaluator)  # restored
    compat.dashboard_importances()
    study = optuna.create_study()
    for i in range(4):
        trial = study.ask({"a": optuna.distributions.UniformDistribution(0, 1),
                           "b": optuna.distributions.UniformDistribution(0, 1)})
        study.tell(trial, float(i))
    importances = _importance.get_param_importance_from_trials_cache(study._storage, study._study_id, 0,
                                                                     study.trials)
    assert {p["name"] for p in importances} == {"a", "b"}


def test_hyperband_puts_a_trial_in_the_same_bracket_in_every_process():
    """optuna 2.10 picks a trial's bracket by Python's salted hash: two workers disagreed. Ours is CRC32; the private
    attributes it reads are still optuna's (an upgrade that renames them fails here)."""
    import subprocess
    import sys

    code = """
import optuna
from autotrain_hydra.compat import optuna as compat
from tests.helpers import compose
optuna.logging.set_verbosity(optuna.logging.WARNING)
pruner = compat.pruner(compose("features=[sweep]", "sweep.pruner=hyperband", "training.eval_strategy=steps",
                               "training.eval_steps=10"))
study = optuna.create_study(study_name="shared", pruner=pruner)
for n in range(12):  # the first ends at step 810: hyperband sizes its brackets from it
    t = study.ask()
    t.report(1.0, 810 if n == 0 else 10)
    study.tell(t, 1.0) if n == 0 else None
pruner._try_initialization(study)
print([pruner._get_bracket_id(study, t) for t in study.trials], pruner._n_brackets)
"""
    seen = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           cwd=ROOT, env={**os.environ, "PYTHONHASHSEED": seed}).stdout for seed in ("1", "2", "3")}
    assert len(seen) == 1, seen
    brackets = eval(seen.pop().split("]")[0] + "]")  # noqa: S307 (our own print)
    assert len(set(brackets)) > 1  # several brackets in use
    base = optuna.pruners.HyperbandPruner
    for attribute in ("_get_bracket_id", "_create_bracket_study"):
        assert callable(getattr(base, attribute))
    pruner = base(min_resource=1, max_resource=81, reduction_factor=3)
    study = optuna.create_study()
    study.add_trial(optuna.trial.create_trial(value=1.0, intermediate_values={81: 1.0}))
    pruner._try_initialization(study)  # the budgets our override reads
    assert {"_n_brackets", "_trial_allocation_budgets", "_total_trial_allocation_budget", "_pruners"} <= set(
        vars(pruner))
