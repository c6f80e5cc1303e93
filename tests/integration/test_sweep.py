"""Sweeps through the real command line (in this process: main() as `python -m autotrain_hydra` runs it)."""

import csv
import json
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from autotrain_hydra.__main__ import main


def sweep(tmp_path, monkeypatch, *overrides):
    monkeypatch.chdir(tmp_path)
    main(["features=[sweep]", "training.max_steps=3", "training.logging_steps=1", *overrides])
    dirs = sorted(Path(tmp_path, "multirun").glob("*/*/*"), key=lambda p: p.stat().st_mtime)
    return dirs[-1]


def trial_values(sweep_dir, metric):
    return {int(d.name): json.loads((d / "metrics.json").read_text())[metric]
            for d in sweep_dir.iterdir() if d.is_dir() and (d / "metrics.json").exists()}


def test_sweep_runs_resumes_and_reports(tmp_path, monkeypatch):
    db = tmp_path / "study.db"
    args = [f"sweep.storage=sqlite:///{db}", "sweep.study_name=lr-search", "sweep.n_trials=3", "sweep.sampler=random",
            """sweep.params='{"lr": {"type": "loguniform", "low": 1e-4, "high": 1e-2}}'"""]
    first = sweep(tmp_path, monkeypatch, *args)
    values = trial_values(first, "eval_loss")
    assert len(values) == 3
    result = OmegaConf.load(first / "optimization_results.yaml")
    assert result.best_value == pytest.approx(min(values.values()))
    assert result.n_complete == 3 and result.metric == "eval_loss"
    assert Path(result.best_model_path).name == str(min(values, key=values.get))
    assert (Path(result.best_model_path) / "model.safetensors").is_file()
    for name in ("trials.csv", "optimization_history.png", "param_importances.png"):
        assert (first / name).is_file(), name
    rows = list(csv.DictReader((first / "trials.csv").open()))
    assert [r["state"] for r in rows] == ["COMPLETE"] * 3 and "params.training.lr" in rows[0]
    # the same command again, on the same storage: the study is finished (n_trials is the study's total), so no
    # trial runs; with a larger n_trials it continues, numbering its trial dirs by the study's trial numbers
    again = sweep(tmp_path, monkeypatch, *args)
    assert again != first and not trial_values(again, "eval_loss")
    assert OmegaConf.load(again / "optimization_results.yaml").n_trials == 3
    second = sweep(tmp_path, monkeypatch, *[a.replace("n_trials=3", "n_trials=5") for a in args])
    assert sorted(trial_values(second, "eval_loss")) == [3, 4]
    result = OmegaConf.load(second / "optimization_results.yaml")
    assert result.n_trials == 5 and result.n_complete == 5
    rows = list(csv.DictReader((second / "trials.csv").open()))
    assert [r["path"] for r in rows[:3]] == ["(not in this sweep dir)"] * 3


def test_failed_trials_are_recorded_and_maximize_picks_max(tmp_path, monkeypatch):
    """fp16 cannot run on a CPU: those trials fail, the others complete, the sweep finishes."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("needs a machine without a GPU to force the failure")
    sweep_dir = sweep(tmp_path, monkeypatch, "sweep.sampler=grid", "sweep.n_trials=4", "sweep.direction=maximize",
                      "sweep.params={training.mixed_precision: [fp32, fp16], training.lr: [1e-3, 1e-2]}")
    result = OmegaConf.load(sweep_dir / "optimization_results.yaml")
    assert result.n_failed == 2 and result.n_complete == 2
    values = trial_values(sweep_dir, "eval_loss")
    assert len(values) == 2 and result.best_value == pytest.approx(max(values.values()))


def test_unreported_metric_fails_before_the_first_trial(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as e:
        main(["features=[sweep]", "trainer=ppo", "data.valid_path=null", "sweep.metric=eval_loss",
              f"trainer.rl.reward_model_path={tmp_path}"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "sweep.metric eval_loss is not a metric this run reports" in err
    assert not (tmp_path / "multirun").exists()


def test_guide_orpo_sweep_example(tmp_path, monkeypatch, capsys):
    """The guide's ORPO sweep example (tiny model, sample data) as one command, with a readable result."""
    sweep_dir = sweep(tmp_path, monkeypatch, "trainer=orpo", "training.epochs=2", "training.batch_size=4",
                      "data.prompt_text_column=prompt", "data.rejected_text_column=rejected", "sweep.n_trials=2",
                      "sweep.metric=eval_loss", "sweep.direction=minimize")
    out = capsys.readouterr().out
    assert "trial  state     eval_loss" in out and "best eval_loss:" in out
    result = OmegaConf.load(sweep_dir / "optimization_results.yaml")
    assert result.n_complete == 2 and set(result.best_params) == {"training.lr", "trainer.orpo_alpha"}


def test_wandb_backend_from_the_command_line(tmp_path, monkeypatch, capsys):
    """No W&B server here (WANDB_MODE=offline in the tests): the spec is written and the command exits 2."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as e:
        main(["features=[sweep]", "sweep.backend=wandb", "sweep.n_trials=4"])
    assert e.value.code == 2
    assert "needs a reachable W&B server" in capsys.readouterr().err
    (spec,) = (tmp_path / "multirun").glob("wandb_sweep-sft-*.yaml")
    assert OmegaConf.load(spec).run_cap == 4


def test_each_trial_logs_to_its_own_wandb_run_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    sweep(tmp_path, monkeypatch, "sweep.n_trials=2", "training.max_steps=2", "report_to=[wandb]")
    import wandb

    assert wandb.run is None  # finished after the last trial
    assert len(list((tmp_path / "wandb").glob("offline-run-*"))) == 2


def _direct(tmp_path, monkeypatch, *overrides):
    monkeypatch.chdir(tmp_path)
    main(["hydra/sweeper=optuna", "training.lr=interval(1e-5,1e-3)", "training.max_steps=1", *overrides])
    return sorted(Path(tmp_path, "multirun").glob("*/*/*"), key=lambda p: p.stat().st_mtime)[-1]


def test_optuna_named_directly_runs_our_sweeper_and_reports(tmp_path, monkeypatch, recwarn):
    """`hydra/sweeper=optuna` without features=[sweep] (Hydra's own way, in-memory study): -m is implied, trial dirs
    are trial numbers, the report is written (the sweeper has the study; before, the report callback could not load
    an in-memory study and Hydra printed its error as a warning), and trial k draws from the sampler's seed + k,
    whichever worker runs it."""
    first = _direct(tmp_path, monkeypatch, "hydra.sweeper.n_trials=2", "hydra.sweeper.sampler.seed=7")
    second = _direct(tmp_path, monkeypatch, "hydra.sweeper.n_trials=1", "hydra.sweeper.sampler.seed=8")
    assert first != second
    for sweep_dir, n in ((first, 2), (second, 1)):
        result = OmegaConf.load(sweep_dir / "optimization_results.yaml")
        assert result.n_complete == n and result.storage == "in memory" and result.metric == "objective"
        assert (sweep_dir / "trials.csv").is_file() and (sweep_dir / "optimization_history.png").is_file()
        assert sorted(p.name for p in sweep_dir.iterdir() if p.is_dir()) == [str(k) for k in range(n)]
    lr = {(d, k): OmegaConf.load(d / str(k) / "config.yaml").training.lr for d, k in ((first, 0), (first, 1),
                                                                                     (second, 0))}
    assert lr[first, 1] == lr[second, 0] != lr[first, 0]  # trial 1 of seed 7 draws from seed 8
    assert not [w for w in recwarn if "Callback" in str(w.message)]


def test_a_sweep_stopped_by_its_failure_rate_still_reports(tmp_path, monkeypatch):
    """max_failure_rate=0 (Hydra's option): the first failed trial ends the sweep with its error, after the report."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("needs a machine without a GPU to force the failure")
    with pytest.raises(SystemExit) as stop:
        _direct(tmp_path, monkeypatch, "hydra.sweeper.n_trials=3", "hydra.sweeper.max_failure_rate=0.0",
                "training.mixed_precision=fp16")
    assert stop.value.code == 1
    (sweep_dir,) = Path(tmp_path, "multirun").glob("*/*/*")
    result = OmegaConf.load(sweep_dir / "optimization_results.yaml")
    assert result.n_trials == 1 and result.n_failed == 1 and result.best_trial is None
