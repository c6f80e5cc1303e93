"""Pruned sweeps: trials report their metric at each evaluation; the pruner stops the ones that do worse than the
trials before them did at that step; a pruned trial ends PRUNED with its results to that step, counted in n_trials,
and the report says at which step."""

import csv
import json

import pytest
from omegaconf import OmegaConf

from autotrain_hydra.cli import translate
from tests.features.test_sweep_study import sweep
from tests.helpers import check, messages


@pytest.mark.slow
def test_a_pruned_sweep_records_pruned_trials_and_a_best_value(tmp_path, monkeypatch):
    # seed 10: the random sampler draws 1e-2, 1e-2, 1e-5, 1e-2 (two trials to compare with, then a slow one)
    sweep_dir = sweep(tmp_path, monkeypatch, "sweep.n_trials=4", "sweep.sampler=random", "sweep.seed=10",
                      "sweep.pruner=median", "features=[sweep,eval]", "eval.metrics=[perplexity]",
                      "eval.before_training=true",
                      "sweep.pruner_startup_trials=2", "training.max_steps=8", "training.eval_strategy=steps",
                      "training.eval_steps=2", """sweep.params='{"training.lr": "choice(1e-2, 1e-5)"}'""")
    rows = list(csv.DictReader((sweep_dir / "trials.csv").open()))
    pruned = [r for r in rows if r["state"] == "PRUNED"]
    assert pruned and len(rows) == 4, rows  # pruned trials count in n_trials
    result = OmegaConf.load(sweep_dir / "optimization_results.yaml")
    assert result.n_pruned == len(pruned) and result.best_value is not None
    for row in pruned:  # stopped at an evaluation before the end, its results to that step written
        step = int(row["pruned_at_step"])
        assert 2 <= step < 8 and float(row["params.training.lr"]) == 1e-5
        metrics = json.loads((sweep_dir / row["number"] / "metrics.json").read_text())
        assert metrics["pruned_at_step"] == step == metrics["global_step"]
        assert float(row["value"]) == pytest.approx(metrics["pruned_value"])
        assert (sweep_dir / row["number"] / "model.safetensors").is_file()
        assert json.loads((sweep_dir / row["number"] / "run.json").read_text())["pruned_at_step"] == step
        assert "eval/perplexity" not in metrics  # the enhanced evaluation is not spent on a pruned trial
        assert metrics["eval_before/perplexity"] > 0  # what was measured before training is kept
        assert "features=[eval]: not run after training: the sweep's pruner stopped this trial" in metrics["notes"]
    for r in rows:
        if r["state"] == "COMPLETE":
            metrics = json.loads((sweep_dir / r["number"] / "metrics.json").read_text())
            assert metrics["global_step"] == 8 and metrics["eval/perplexity"] > 0
            assert "pruned_at_step" not in json.loads((sweep_dir / r["number"] / "run.json").read_text())


def test_the_pruner_is_set_in_the_hydra_grammar_and_the_flag_cli():
    assert translate(["--trainer", "sft", "--use-sweep", "--sweep-pruner", "hyperband",
                      "--sweep-pruner-reduction-factor", "2"]).overrides == [
        "trainer=sft", "sweep.pruner=hyperband", "sweep.pruner_reduction_factor=2", "features=[sweep]"]
    assert messages(check("features=[sweep]", "sweep.pruner=asha", filesystem=False), "error") == [
        "sweep.pruner must be one of none, median, percentile, successive_halving, hyperband"]
    assert messages(check("features=[sweep]", "sweep.pruner=median", "sweep.backend=wandb", filesystem=False),
                    "error") == ["sweep.pruner=median prunes Optuna trials: sweep.backend=wandb runs no Optuna study"]
