"""Sweeps through the real command line (main() as `python -m autotrain_hydra` runs it), the sweeper's settings, and
several workers sharing one study."""

import csv
import json
import signal
import time
import warnings
from pathlib import Path

import optuna
import pytest
from omegaconf import OmegaConf

from autotrain_hydra.__main__ import main
from tests.helpers import composed_with_hydra, python_m


def sweep(tmp_path, monkeypatch, *overrides):
    monkeypatch.chdir(tmp_path)
    main(["features=[sweep]", "training.max_steps=3", "training.logging_steps=1", *overrides])
    dirs = sorted(Path(tmp_path, "multirun").glob("*/*/*"), key=lambda p: p.stat().st_mtime)
    return dirs[-1]


def trial_values(sweep_dir, metric):
    return {int(d.name): json.loads((d / "metrics.json").read_text())[metric]
            for d in sweep_dir.iterdir() if d.is_dir() and (d / "metrics.json").exists()}


@pytest.mark.slow
def test_sweep_runs_resumes_and_reports(tmp_path, monkeypatch):
    db = tmp_path / "study.db"
    args = [f"sweep.storage=sqlite:///{db}", "sweep.study_name=lr-search", "sweep.n_trials=3", "sweep.sampler=random",
            """sweep.params='{"lr": {"type": "loguniform", "low": 1e-4, "high": 1e-2}}'""", "report_to=[tensorboard]"]
    from autotrain_hydra.features import sweep_page

    pages, write_page = [], sweep_page.write_page
    monkeypatch.setattr(sweep_page, "write_page", lambda study, rows, result, sweep_dir, live: pages.append(
        (live, len(rows))) or write_page(study, rows, result, sweep_dir, live))
    first = sweep(tmp_path, monkeypatch, *args)
    values = trial_values(first, "eval_loss")
    assert len(values) == 3
    # the page: rewritten live as each trial ends, then the final page, with every trial
    assert pages == [(True, 1), (True, 2), (True, 3), (False, 3)]
    # TensorBoard: the trials side by side (tensorboard --logdir <sweep dir>: a run per trial)
    from tensorboard.backend.event_processing.event_multiplexer import EventMultiplexer

    runs = EventMultiplexer().AddRunsFromDirectory(str(first)).Reload().Runs()
    assert sorted(runs) == ["0/tensorboard", "1/tensorboard", "2/tensorboard"]
    assert all({"train/loss", "eval/loss"} <= set(tags["scalars"]) for tags in runs.values())
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


@pytest.mark.slow
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


@pytest.mark.slow
def test_unreported_metric_fails_before_the_first_trial(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as e:
        main(["features=[sweep]", "trainer=ppo", "data.valid_path=null", "sweep.metric=eval_loss",
              f"trainer.rl.reward_model_path={tmp_path}"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "sweep.metric eval_loss is not a metric this run reports" in err
    assert not (tmp_path / "multirun").exists()


@pytest.mark.slow
def test_guide_orpo_sweep_example(tmp_path, monkeypatch, capsys):
    """The guide's ORPO sweep example (tiny model, sample data) as one command, with a readable result."""
    sweep_dir = sweep(tmp_path, monkeypatch, "trainer=orpo", "training.epochs=2", "training.batch_size=4",
                      "data.prompt_text_column=prompt", "data.rejected_text_column=rejected", "sweep.n_trials=2",
                      "sweep.metric=eval_loss", "sweep.direction=minimize")
    out = capsys.readouterr().out
    assert "trial  state     eval_loss" in out and "best eval_loss:" in out
    result = OmegaConf.load(sweep_dir / "optimization_results.yaml")
    assert result.n_complete == 2 and set(result.best_params) == {"training.lr", "trainer.orpo_alpha"}


@pytest.mark.slow
def test_wandb_backend_from_the_command_line(tmp_path, monkeypatch, capsys):
    """No W&B server here (WANDB_MODE=offline in the tests): the spec is written and the command exits 2."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as e:
        main(["features=[sweep]", "sweep.backend=wandb", "sweep.n_trials=4"])
    assert e.value.code == 2
    assert "needs a reachable W&B server" in capsys.readouterr().err
    (spec,) = (tmp_path / "multirun").glob("wandb_sweep-sft-*.yaml")
    assert OmegaConf.load(spec).run_cap == 4


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
def test_a_searched_key_given_a_fixed_value_is_searched_in_every_trial(tmp_path, monkeypatch, capsys):
    """Bug: `--lr 5e-7 --use-sweep` (the guide's ORPO sweep example): the log said training.lr was searched and its
    command-line value replaced, but every trial ran at 5e-7 and the best parameters had no training.lr."""
    sweep_dir = sweep(tmp_path, monkeypatch, "training.lr=5e-7", "sweep.n_trials=2", "training.max_steps=1")
    out = capsys.readouterr()
    assert "sweep: training.lr is searched; its value on the command line (5e-07) is replaced in every trial" \
        in out.out + out.err
    lrs = [OmegaConf.load(sweep_dir / str(k) / "config.yaml").training.lr for k in (0, 1)]
    assert all(lr != 5e-7 and 1e-5 <= lr <= 1e-2 for lr in lrs) and lrs[0] != lrs[1]
    result = OmegaConf.load(sweep_dir / "optimization_results.yaml")
    assert set(result.best_params) == {"training.lr"} and result.best_params["training.lr"] in lrs


@pytest.mark.slow
def test_a_sweeper_setting_typed_as_hydra_s_key_wins(tmp_path, monkeypatch):
    """Bug: `-m hparams_search=sft_optuna hydra.sweeper.n_trials=2` ran 10 trials (sweep.n_trials won silently)."""
    monkeypatch.chdir(tmp_path)
    main(["hparams_search=sft_optuna", "hydra.sweeper.n_trials=2", "training.max_steps=1"])
    (sweep_dir,) = Path(tmp_path, "multirun").glob("*/*/*")
    assert sorted(p.name for p in sweep_dir.iterdir() if p.is_dir()) == ["0", "1"]
    assert OmegaConf.load(sweep_dir / "0" / "config.yaml").sweep.n_trials == 2  # the trial says what ran
    assert OmegaConf.load(sweep_dir / "optimization_results.yaml").n_trials == 2


@pytest.mark.slow
def test_a_finished_study_run_again_into_a_new_sweep_dir_says_it_is_complete(tmp_path, monkeypatch, capsys):
    """Bug: rerunning a finished study into a new sweep dir crashed with FileNotFoundError on trials.csv.<pid>.tmp."""
    args = [f"sweep.storage=sqlite:///{tmp_path}/s.db", "sweep.study_name=done", "sweep.n_trials=1",
            "training.max_steps=1"]
    sweep(tmp_path, monkeypatch, *args)
    capsys.readouterr()
    main(["features=[sweep]", *args, f"hydra.sweep.dir={tmp_path}/again/new"])  # returns: exit 0
    out = capsys.readouterr()
    said = "the study done is complete: it has 1 of n_trials=1 trials (1 complete); no trial was run"
    assert said in out.out + out.err
    result = OmegaConf.load(tmp_path / "again" / "new" / "optimization_results.yaml")
    assert result.n_complete == 1 and (tmp_path / "again" / "new" / "trials.csv").is_file()


# --- the sweeper as a Hydra plugin, and its settings


def test_the_sweep_feature_selects_our_sweeper_and_fills_its_settings():
    cfg = composed_with_hydra("features=[sweep]", "sweep.n_trials=7", "sweep.direction=maximize", "sweep.seed=3",
                              "sweep.metric=eval_mean_token_accuracy")
    sweeper = cfg.hydra.sweeper
    assert sweeper._target_ == "hydra_plugins.autotrain_hydra_sweeper.SharedStudySweeper"
    assert (sweeper.n_trials, sweeper.direction) == (7, "maximize")
    assert (sweeper.n_jobs, sweeper.max_failure_rate) == (1, 1.0)
    # a setting typed as hydra.sweeper.<x> wins (bug: hparams_search=sft_optuna hydra.sweeper.n_trials=2 ran 10)
    cfg = composed_with_hydra("hparams_search=sft_optuna", "hydra.sweeper.n_trials=2")
    assert cfg.hydra.sweeper.n_trials == 2 and cfg.sweep.n_trials == 10
    # hydra/sweeper=optuna (Hydra's own way) names our sweeper, with the plugin's settings and defaults
    cfg = composed_with_hydra("hydra/sweeper=optuna")
    assert cfg.hydra.sweeper._target_ == "hydra_plugins.autotrain_hydra_sweeper.SharedStudySweeper"
    assert cfg.hydra.sweeper.n_trials == 20 and cfg.hydra.sweeper.sampler._target_ == "optuna.samplers.TPESampler"


def test_the_sampler_is_sweep_sampler_seeded_unless_chosen_hydra_s_way():
    from autotrain_hydra.features.sweep_study import sampler_of

    name, node = sampler_of(composed_with_hydra("features=[sweep]", "sweep.seed=3"))
    assert (name, dict(node)) == ("tpe", {"_target_": "optuna.samplers.TPESampler", "seed": 3})
    name, node = sampler_of(composed_with_hydra("features=[sweep]", "sweep.seed=3", "hydra.sweeper.sampler.seed=5"))
    assert node.seed == 5  # typed, it wins
    name, node = sampler_of(composed_with_hydra("features=[sweep]", "sweep.sampler=grid"))
    assert (name, node._partial_) == ("grid", True)
    # chosen Hydra's way, with the sweep feature too: used as it is (the grid sampler takes no seed)
    name, node = sampler_of(composed_with_hydra("features=[sweep]", "hydra/sweeper/sampler=grid"))
    assert (name, node._target_) == ("grid", "optuna.samplers.GridSampler") and "seed" not in node
    name, node = sampler_of(composed_with_hydra("features=[sweep]", "hydra/sweeper/sampler=random",
                                                "hydra.sweeper.sampler.seed=9"))
    assert (name, node.seed) == ("random", 9)


def test_the_shared_study_sweeper_is_a_discoverable_hydra_plugin():
    """Hydra instantiates sweepers from the hydra_plugins namespace only; an editable install must expose ours."""
    from hydra.core.plugins import Plugins
    from hydra.plugins.sweeper import Sweeper

    import autotrain_hydra  # noqa: F401  (exposes the plugin folder of a checkout)

    assert "SharedStudySweeper" in [p.__name__ for p in Plugins.instance().discover(Sweeper)]


# --- several workers on one study (real processes)
SWEEP = ["features=[sweep]", "sweep.sampler=random", "sweep.study_name=shared", "training.max_steps=2",
         "training.logging_steps=1"]


def _study(db: Path, name: str = "shared"):
    return optuna.load_study(study_name=name, storage=f"sqlite:///{db}")


@pytest.mark.slow
def test_two_sweep_workers_share_one_study(tmp_path):
    """Two workers started together on one sqlite study: the requested total of trials, each number once, each in
    its own dir, no parameter drawn twice, and a report that lists them all."""
    sweep_dir = tmp_path / "sweep"
    args = [*SWEEP, "sweep.n_trials=4", f"hydra.sweep.dir={sweep_dir}"]
    workers = [python_m(*args, cwd=tmp_path) for _ in range(2)]
    outs = [w.communicate(timeout=600)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outs[0][-3000:] + outs[1][-3000:]
    trials = _study(sweep_dir / "optuna.db").trials
    assert sorted(t.number for t in trials) == [0, 1, 2, 3]
    assert all(t.state.name == "COMPLETE" for t in trials)
    assert len({t.params["training.lr"] for t in trials}) == 4
    ran = [int(o.split("this worker ran ")[1].split(" ")[0]) for o in outs]
    assert sum(ran) == 4 and all(n >= 1 for n in ran), ran  # both workers took part
    for t in trials:
        metrics = json.loads((sweep_dir / str(t.number) / "metrics.json").read_text())
        assert metrics["objective"] == pytest.approx(t.value)
    result = OmegaConf.load(sweep_dir / "optimization_results.yaml")
    assert result.n_trials == 4 and result.n_complete == 4


def _wait_for_running_trial(db: Path, timeout: float = 240.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if db.exists():
            try:
                running = [t for t in _study(db).trials if t.state.name == "RUNNING"]
            except Exception:  # the study is not created yet
                running = []
            if running:
                return running[0].number
        time.sleep(0.5)
    raise AssertionError("no trial started")


def _open_shared(url, barrier, results, lock):
    import contextlib

    from autotrain_hydra.features import sweep_study

    if not lock:  # as on a database server: no file lock, the retry alone must absorb the race
        sweep_study.budget_lock = lambda url: contextlib.nullcontext()
    barrier.wait()
    try:
        _, study = sweep_study.open_study(url, study_name="shared", sampler=None, directions=["minimize"],
                                          heartbeat_interval=60, grace_period=None)
        results.put(study.study_name)
    except Exception as e:
        results.put(f"{type(e).__name__}: {e}")


@pytest.mark.parametrize("lock", [True, False], ids=["sqlite-lock", "server-retry"])
def test_workers_started_at_the_same_instant_all_open_the_new_study(tmp_path, lock):
    """Workers racing to create a new storage (tables, alembic version row) all get the one study. Without our lock
    and retry, most of 6 simultaneous workers failed with IntegrityError/OperationalError (the CI failure of the
    two-worker test)."""
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    barrier, results = ctx.Barrier(6), ctx.Queue()
    workers = [ctx.Process(target=_open_shared, args=(url, barrier, results, lock)) for _ in range(6)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
    assert [results.get(timeout=5) for _ in workers] == ["shared"] * 6
    assert [s.study_name for s in optuna.get_all_study_summaries(url)] == ["shared"]


@pytest.mark.slow
def test_trials_lost_with_their_worker_are_rerun_with_their_parameters(tmp_path, monkeypatch):
    """A worker stopped with SIGTERM (scancel) marks its trial FAIL and queues its re-run; the next worker takes the
    re-run and is killed with SIGKILL; the sweep run again finds that trial lost (its worker's process is gone),
    marks it FAIL and re-runs it, with the first trial's parameters, then completes the budget: n_trials trials
    that ended by themselves, the lost ones not counted. Before: the killed trial stayed RUNNING, was later marked
    FAIL, was never re-run, and the sweep ended with fewer finished trials than n_trials."""
    sweep_dir = tmp_path / "sweep"
    db = sweep_dir / "optuna.db"
    args = [*SWEEP, "sweep.n_trials=3", f"hydra.sweep.dir={sweep_dir}", "sweep.heartbeat_interval=1",
            "sweep.grace_period=60"]  # a long grace period: the dead worker is found by its process, at once
    for sig, number in ((signal.SIGTERM, 0), (signal.SIGKILL, 1)):
        worker = python_m(*args, "training.max_steps=100000", cwd=tmp_path)
        assert _wait_for_running_trial(db) == number
        time.sleep(2)  # a heartbeat or two
        worker.send_signal(sig)
        worker.communicate(timeout=120)
    trials = _study(db).trials
    assert [t.state.name for t in trials] == ["FAIL", "RUNNING"]  # SIGTERM: failed at once; SIGKILL: left running
    assert trials[1].params == trials[0].params  # trial 1 re-ran trial 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        assert optuna.storages.RetryFailedTrialCallback.retried_trial_number(trials[1]) == 0  # recorded as optuna's

    monkeypatch.chdir(tmp_path)
    main(args)
    trials = _study(db).trials
    assert [t.state.name for t in trials] == ["FAIL", "FAIL", "COMPLETE", "COMPLETE", "COMPLETE"]
    assert trials[2].params == trials[0].params and trials[2].system_attrs["retry_history"] == [0, 1]
    assert OmegaConf.load(sweep_dir / "2" / "config.yaml").training.lr == trials[0].params["training.lr"]
    result = OmegaConf.load(sweep_dir / "optimization_results.yaml")
    assert (result.n_trials, result.n_complete, result.n_failed, result.n_lost) == (3, 3, 0, 2)
    rows = {int(r["number"]): r for r in csv.DictReader((sweep_dir / "trials.csv").open())}
    assert [(rows[n]["lost"], rows[n]["rerun_of"], rows[n]["rerun_as"]) for n in range(3)] == [
        ("True", "", "1"), ("True", "0", "2"), ("False", "1", "")]
    assert float(rows[2]["params.training.lr"]) == trials[0].params["training.lr"]


def _worker_study(url, n_trials=2):
    """What one worker holds: its own storage and study objects, and the sweeper's loop state."""
    from autotrain_hydra.features.sweep_study import SharedStudy, open_study

    sweeper = SharedStudy(None, "minimize", url, "s", n_trials, 1, 1.0, None, None, None)
    sweeper.sampler_name, sweeper.seed = "random", None
    storage, study = open_study(url, study_name="s", sampler=optuna.samplers.RandomSampler(), directions=["minimize"],
                                heartbeat_interval=1, grace_period=1)
    return sweeper, storage, study


def test_a_trial_whose_heartbeat_expired_is_rerun_once_and_own_failures_are_not(tmp_path):
    """The heartbeat path (a worker on another machine): a trial whose heartbeat is older than the grace period is
    marked FAIL and re-run with its parameters by one worker only; a second re-run queued for the same lost trial
    (two servers racing) is never run; a trial that failed by its own error is not re-run, and counts."""
    from autotrain_hydra.features.sweep_study import WORKER
    from autotrain_hydra.schema.sweep_space import Dist

    url = f"sqlite:///{tmp_path / 'o.db'}"
    space = {"training.lr": Dist("float", 1e-5, 1e-3, None, True)}
    dead, dead_storage, dead_study = _worker_study(url)  # a worker that dies with its trial (never used again)
    lost = dead._next_trial(dead_study, dead_storage, space)
    lost.set_user_attr(WORKER, {"host": "another machine"})  # its process cannot be looked at: heartbeats decide
    time.sleep(2.2)  # no heartbeat since: older than the grace period (1 s)
    b, b_storage, b_study = _worker_study(url)
    rerun = b._next_trial(b_study, b_storage, space)
    assert (rerun.number, rerun.params) == (1, lost.params)
    assert [t.state.name for t in b_study.trials] == ["FAIL", "RUNNING"]
    # a second re-run of trial 0, as two workers on a database server could queue: taken, marked not run
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        b_study.add_trial(optuna.trial.create_trial(
            state=optuna.trial.TrialState.WAITING, params=lost.params, distributions=b_study.trials[0].distributions,
            system_attrs={"failed_trial": 0, "retry_history": [0]}))
    b_study.tell(rerun, 0.5)
    c, c_storage, c_study = _worker_study(url)
    own_error = c._next_trial(c_study, c_storage, space)  # takes the second re-run, does not run it: a new trial
    assert own_error.number == 3 and own_error.params != lost.params
    c_study.tell(own_error, state=optuna.trial.TrialState.FAIL)  # its own error: counted, not re-run
    assert c._next_trial(c_study, c_storage, space) is None  # 2 trials ended by themselves
    trials = c_study.trials
    assert [t.state.name for t in trials] == ["FAIL", "COMPLETE", "FAIL", "FAIL"]
    assert trials[2].user_attrs["autotrain_hydra"] == "autotrain_hydra: not run: trial 1 re-runs trial 0"


def test_the_grid_visits_a_range_without_its_end_and_every_choice():
    from autotrain_hydra.features.sweep_study import grid_choices
    from autotrain_hydra.schema.sweep_space import Dist

    assert grid_choices(Dist("categorical", choices=("a", "b"))) == ["a", "b"]
    assert grid_choices(Dist("int", 1, 4, 1)) == [1, 2, 3]
    assert grid_choices(Dist("float", 0.0, 0.3, 0.1)) == pytest.approx([0.0, 0.1, 0.2])  # 0.3/0.1 = 2.999...
    with pytest.raises(ValueError, match="the grid sampler needs discrete parameters"):
        grid_choices(Dist("float", 1e-5, 1e-3, None, True))


def test_a_multi_objective_direction_is_refused_before_any_trial(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("autotrain_hydra.run.execute", lambda *a, **k: pytest.fail("a trial ran"))
    with pytest.raises(SystemExit) as stop:
        main(["-m", "features=[sweep]", "sweep.n_trials=1", "hydra.sweeper.direction=[minimize,maximize]"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "Error: hydra.sweeper.direction must be minimize or maximize (a run returns one objective: one " \
           "direction)  [hydra.sweeper.direction=['minimize', 'maximize']]" in err
    assert "Traceback" not in err and list(tmp_path.iterdir()) == []


def test_a_sampler_that_cannot_be_made_is_named_before_any_trial(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("autotrain_hydra.run.execute", lambda *a, **k: pytest.fail("a trial ran"))
    with pytest.raises(SystemExit) as stop:
        main(["features=[sweep]", "sweep.n_trials=1", "hydra.sweeper.sampler._target_=foo.Bar"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "Error: the sweeper cannot be made from hydra.sweeper: Error locating target 'foo.Bar'" in err
    assert "Traceback" not in err



@pytest.mark.parametrize("state", ["COMPLETE", "PRUNED", "FAIL"])
def test_the_grids_last_point_told_does_not_stop_the_sweep(state):
    """Red team: a grid sweep whose last trial was pruned ended with exit 1 (optuna's Study.stop outside its loop)."""
    from optuna.trial import TrialState

    from autotrain_hydra.features.sweep_study import tell

    def told(study, trial, with_tell):
        if state == "COMPLETE":
            return with_tell(study, trial, 1.0) if with_tell is tell else study.tell(trial, 1.0)
        return with_tell(study, trial, state=getattr(TrialState, state)) if with_tell is tell else \
            study.tell(trial, state=getattr(TrialState, state))

    study = optuna.create_study(sampler=optuna.samplers.GridSampler({"x": [1]}))
    trial = study.ask()
    trial.suggest_categorical("x", [1])
    told(study, trial, tell)
    assert study.trials[0].state.name == state and isinstance(study.sampler, optuna.samplers.GridSampler)
    again = optuna.create_study(sampler=optuna.samplers.GridSampler({"x": [1]}))
    t = again.ask()
    t.suggest_categorical("x", [1])
    with pytest.raises(RuntimeError, match="Study.stop"):  # what optuna does: why tell exists
        told(again, t, None)
