"""One run, one dir of its own: runs started in the same second never share (or overwrite) a Hydra run dir, and a
run dir named on the command line that holds earlier results is refused before Hydra writes into it."""

import datetime
import os
from pathlib import Path

import pytest
import yaml

from autotrain_hydra import paths
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


def test_claim_dir_makes_a_new_dir_each_call(tmp_path):
    base = str(tmp_path / "outputs" / "sft" / "12-00-00")
    assert paths.claim_dir(base) == base
    assert paths.claim_dir(base) == base + "_1"
    assert paths.claim_dir(base) == base + "_2"
    assert sorted(os.listdir(tmp_path / "outputs" / "sft")) == ["12-00-00", "12-00-00_1", "12-00-00_2"]


def test_written_whole_replaces_a_file_whole_or_not_at_all(tmp_path):
    target = tmp_path / "trials.csv"
    target.write_text("earlier")
    with pytest.raises(RuntimeError):
        with paths.written_whole(str(target)) as tmp, open(tmp, "w") as f:
            f.write("half")
            raise RuntimeError("the writer died")
    assert target.read_text() == "earlier" and os.listdir(tmp_path) == ["trials.csv"]
    with paths.written_whole(str(target)) as tmp, open(tmp, "w") as f:
        f.write("new")
    assert target.read_text() == "new" and os.listdir(tmp_path) == ["trials.csv"]


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

    # told to overwrite, the same command goes on
    main(["hydra.run.dir=outputs/exp1", "training.seed=3", "overwrite_output_dir=true"])
    assert overrides_of(run) == ["training.seed=3", "overwrite_output_dir=true"]
    assert no_training == [str(run), str(run)]
