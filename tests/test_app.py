"""The entry point: one run, one dir of its own (runs started in the same second never share one, a named dir with
results is refused before Hydra writes into it), validation writes nothing, every user error printed once with its
exit code."""

import datetime
import os
from pathlib import Path

import pytest
import yaml

from autotrain_hydra.__main__ import main


@pytest.fixture
def no_training(monkeypatch):
    """The job itself stubbed out: these tests are about run dirs, which Hydra and the entry point make before it."""
    calls = []

    def execute(cfg, report, notes=(), say_warnings=True):
        calls.append(cfg.output_dir)
        return 1.0

    monkeypatch.setattr("autotrain_hydra.run.execute", execute)
    return calls


@pytest.fixture
def same_second(monkeypatch, tmp_path):
    """Every run of this test starts at 07:00:00 (Hydra's ``now`` resolver reads hydra.core.utils.datetime)."""
    import hydra.core.utils

    class Frozen(datetime.datetime):
        @classmethod
        def now(cls, tz=None):
            return datetime.datetime(2026, 11, 27, 7, 0, 0)

    monkeypatch.setattr(hydra.core.utils, "datetime", Frozen)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def overrides_of(run_dir: Path):
    return yaml.safe_load((run_dir / ".hydra" / "overrides.yaml").read_text())


def test_runs_started_in_the_same_second_get_their_own_run_dirs(same_second, no_training, capsys):
    for seed in (1, 2, 3):
        main([f"training.seed={seed}"])
    day = same_second / "outputs" / "sft" / "2026-11-27"
    assert sorted(os.listdir(day)) == ["07-00-00", "07-00-00_1", "07-00-00_2"]
    assert no_training == [str(day / d) for d in ("07-00-00", "07-00-00_1", "07-00-00_2")]  # each job got its own
    # each run's .hydra/ records its own overrides: the first run's were not overwritten by the later ones
    assert [overrides_of(day / d) for d in sorted(os.listdir(day))] == [
        [f"training.seed={seed}"] for seed in (1, 2, 3)]


@pytest.mark.parametrize("argv", [["validate_only=true"], ["training.lr=-1"], ["trainer.dpo_bta=1"],
                                  ["features=[sweep]", "validate_only=true"], ["--multirun", "training.lr=-1,1"]])
def test_validation_writes_nothing(tmp_path, monkeypatch, capsys, argv):
    """Bug: after a value error, and with validate_only=true, "nothing was loaded or written" was printed beside a
    new run dir holding .hydra/ and train.log; with the sweep feature, validate_only ran every trial."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("autotrain_hydra.run.execute", lambda *a, **k: pytest.fail("a job ran"))
    code = main(argv) if "validate_only=true" in argv else pytest.raises(SystemExit, main, argv).value.code
    assert code in (None, 2)
    out = capsys.readouterr()
    assert "nothing was loaded or written" in out.out + out.err
    assert list(tmp_path.iterdir()) == []


def test_multiruns_started_in_the_same_second_get_their_own_sweep_dirs(same_second, no_training, capsys):
    """The sweep dir is claimed once by the launcher; every job of that multirun resolves the same one."""
    for lr in ("1e-4", "2e-4"):
        main(["--multirun", f"training.lr={lr}", "training.seed=1,2"])
    day = same_second / "multirun" / "sft" / "2026-11-27"
    assert sorted(os.listdir(day)) == ["07-00-00", "07-00-00_1"]
    for sweep, lr in zip(("07-00-00", "07-00-00_1"), ("1e-4", "2e-4")):
        assert sorted(p for p in os.listdir(day / sweep) if p != "multirun.yaml") == ["0", "1"]
        assert [overrides_of(day / sweep / j) for j in ("0", "1")] == [
            [f"training.lr={float(lr)}", f"training.seed={s}"] for s in (1, 2)]  # as Hydra writes


def test_each_job_of_a_multirun_with_output_dir_writes_into_its_own_numbered_dir(same_second, no_training, capsys):
    """Bug: a job's config is composed in Hydra's RUN mode, so hydra.mode did not tell a trial from a single run:
    every trial of ``--multirun ... output_dir=X`` (and of features=[sweep]) wrote into X itself, the second one
    refused because the first had written there."""
    out = same_second / "out"
    main(["--multirun", "training.seed=1,2", f"output_dir={out}"])
    assert no_training == [str(out / "0"), str(out / "1")]
    main(["training.seed=3", f"output_dir={same_second / 'single'}"])
    assert no_training[-1] == str(same_second / "single")


def test_a_run_dir_named_on_the_command_line_with_results_is_refused_before_hydra_writes(tmp_path, monkeypatch,
                                                                                        no_training, capsys):
    monkeypatch.chdir(tmp_path)
    main(["hydra.run.dir=outputs/exp1", "training.seed=1"])
    run = tmp_path / "outputs" / "exp1"
    (run / "metrics.json").write_text('{"eval_loss": 1.0}')  # an earlier run's results
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    capsys.readouterr()

    with pytest.raises(SystemExit) as stop:
        main(["hydra.run.dir=outputs/exp1", "training.seed=2"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert (f"Error: hydra.run.dir {run} is not empty: a run never overwrites earlier results  "
            f"[hydra.run.dir={run}]") in err
    assert "fix: choose a new hydra.run.dir, or set overwrite_output_dir=true to replace what is there" in err
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before  # .hydra/ and the log untouched
    assert overrides_of(run) == ["training.seed=1"]  # hydra.* overrides are in hydra.yaml

    monkeypatch.setenv("AUTOTRAIN_TEST_TARGET", str(run))  # the same dir through an interpolation
    with pytest.raises(SystemExit) as stop:
        main(["hydra.run.dir=${oc.env:AUTOTRAIN_TEST_TARGET}", "training.seed=2"])
    assert stop.value.code == 2 and f"Error: hydra.run.dir {run} is not empty" in capsys.readouterr().err
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before

    # told to overwrite, the same command goes on
    main(["hydra.run.dir=outputs/exp1", "training.seed=3", "overwrite_output_dir=true"])
    assert overrides_of(run) == ["training.seed=3", "overwrite_output_dir=true"]
    assert no_training == [str(run), str(run)]


def test_a_config_with_errors_prints_each_warning_once(tmp_path, monkeypatch, capsys):
    """Bug: when a config had an error, every warning was printed twice."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as stop:
        main(["trainer.dpo_beta=0.1", "training.lr=-1"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.count("Warning: dpo_beta only applies to DPO trainer, will be ignored") == 1
    assert err.count("Error: training.lr must be a number > 0") == 1 and "Traceback" not in err


@pytest.mark.parametrize("env", [{"WORLD_SIZE": "2", "RANK": "1", "LOCAL_RANK": "1"},
                                 {"WORLD_SIZE": "4", "RANK": "0", "LOCAL_RANK": "0"}])
def test_started_by_torchrun_it_is_refused_at_once_with_the_launcher_that_works(tmp_path, monkeypatch, capsys, env):
    """Bug: `torchrun --nproc_per_node 2 -m autotrain_hydra ...` made one run dir per rank."""
    monkeypatch.chdir(tmp_path)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(SystemExit) as stop:
        main(["training.max_steps=1"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert f"started as one of {env['WORLD_SIZE']} processes" in err
    assert f"launcher=multiprocess launcher.num_processes={env['WORLD_SIZE']}" in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("extra", [[], ["validate_only=true"]])
def test_a_sweep_value_without_multirun_is_a_clear_error(tmp_path, monkeypatch, capsys, extra):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as stop:
        main(["training.seed=1,2", *extra])  # validate_only says so too (it said "valid")
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "Error: training.seed=1,2 is a sweep (several values), and this command is a single run" in err
    assert "add --multirun" in err and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("error,code", [("DataError", 2), ("HardwareError", 2), ("CheckpointError", 2),
                                        ("NumericalError", 1), ("ModelLoadError", 1), ("NothingTrained", 1),
                                        ("Stopped", 130)])
def test_every_user_error_exits_with_its_code_and_no_traceback(tmp_path, monkeypatch, capsys, error, code):
    from autotrain_hydra import errors

    monkeypatch.chdir(tmp_path)

    def fail(*a, **k):
        raise getattr(errors, error)("what went wrong\n    fix: what to do")

    monkeypatch.setattr("autotrain_hydra.run.execute", fail)
    assert pytest.raises(SystemExit, main, ["training.max_steps=1"]).value.code == code
    err = capsys.readouterr().err
    assert "what went wrong" in err and "Traceback" not in err


def test_a_bug_keeps_its_traceback(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("autotrain_hydra.run.execute", lambda *a, **k: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        main(["training.max_steps=1"])



def test_cfg_resolve_prints_the_values_and_writes_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    main(["trainer=dpo", "--cfg", "job", "--resolve"])
    job = yaml.safe_load(capsys.readouterr().out)
    assert job["trainer"]["name"] == "dpo" and job["training"]["lr"] == 1e-3  # the tiny preset's, resolved
    assert "hydra" not in job
    main(["--cfg", "hydra", "--resolve", "--package", "hydra.run"])
    assert "outputs/sft/" in yaml.safe_load(capsys.readouterr().out)["dir"]
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(SystemExit) as stop:
        main(["--cfg", "job", "--package", "training.no_such"])
    assert stop.value.code == 2 and "--package training.no_such: no such node" in capsys.readouterr().err


def test_info_and_a_missing_config_dir(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    main(["--info", "searchpath"])
    assert "pkg://hydra.conf" in capsys.readouterr().out
    with pytest.raises(SystemExit) as stop:
        main(["--config-dir", str(tmp_path / "nope"), "trainer=dpo"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert f"Error: --config-dir {tmp_path / 'nope'}: no such directory" in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_shell_completion_installs_and_says_what_it_takes(tmp_path, monkeypatch, capsys):
    """``--shell-completion install=bash`` prints Hydra's script; without a subcommand, with two, or a ``query=``
    typed by hand (no COMP_LINE from a shell) it is a clear error, exit 2, not Hydra's traceback; the shell's query
    completes our config groups."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("COMP_LINE", raising=False)
    main(["--shell-completion", "install=bash"])
    assert "complete -o nospace -o default -F hydra_bash_completion" in capsys.readouterr().out
    for argv, said in ((["--shell-completion"], "got none"),
                       (["-sc", "install=bash", "uninstall=bash"], "got install=bash uninstall=bash"),
                       (["-sc", "install=bash", "trainer=dpo"], "and nothing else; got install=bash trainer=dpo"),
                       (["-sc", "install=tcsh"], "install=tcsh: Hydra completes bash, zsh, fish"),
                       (["-sc", "install="], "install=: Hydra completes"),
                       (["-sc", "query=bash"], "the shell sets COMP_LINE"),
                       (["-sc", "install=bash", "-m"], "it takes no --multirun"),
                       (["-sc", "install=bash", "--cfg", "job"], "it takes no --cfg"),
                       (["--info", "searchpath", "-m"], "--info prints Hydra's own information")):
        with pytest.raises(SystemExit) as stop:
            main(argv)
        err = capsys.readouterr().err
        assert stop.value.code == 2 and said in err and "fix:" in err and "Traceback" not in err, (argv, err)
    monkeypatch.setenv("COMP_LINE", "autotrain-hydra trainer=")
    main(["-sc", "query=bash"])
    assert "trainer=dpo" in capsys.readouterr().out
    assert list(tmp_path.iterdir()) == []


def test_a_run_dir_that_cannot_be_made_is_a_clear_error(tmp_path, monkeypatch, capsys):
    """Bug (red team): a file named outputs/ in the launch dir (or a read-only launch dir) ended in a traceback from
    the resolver that makes the default run dir."""
    import logging

    monkeypatch.setattr(logging.getLogger(), "handlers", [])  # an earlier test's Hydra handler on a closed stream
    monkeypatch.chdir(tmp_path)
    (tmp_path / "outputs").write_text("")
    with pytest.raises(SystemExit) as e:
        main(["training.max_steps=1"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "Traceback" not in err
    assert "Error: hydra.run.dir: the run dir cannot be made (Not a directory: outputs/sft)" in err
    with pytest.raises(SystemExit) as e:
        main(["training.max_steps=1", "hydra.run.dir=${oc.env:AUTOTRAIN_TEST_UNSET}/r"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "Traceback" not in err
    assert "Error: hydra.run.dir=${oc.env:AUTOTRAIN_TEST_UNSET}/r cannot be resolved" in err
