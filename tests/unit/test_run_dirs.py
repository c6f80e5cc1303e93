"""One run, one dir of its own: runs started in the same second never share (or overwrite) a Hydra run dir, and a
run dir named on the command line that holds earlier results is refused before Hydra writes into it."""

import datetime
import os
from pathlib import Path

import pytest
import yaml

from autotrain_hydra import paths
from autotrain_hydra.__main__ import main


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


def test_runs_started_in_the_same_second_get_their_own_run_dirs(same_second, capsys):
    for seed in (1, 2, 3):
        main(["validate_only=true", f"training.seed={seed}"])
    day = same_second / "outputs" / "sft" / "2026-11-27"
    assert sorted(os.listdir(day)) == ["07-00-00", "07-00-00_1", "07-00-00_2"]
    # each run's .hydra/ records its own overrides: the first run's were not overwritten by the later ones
    assert [overrides_of(day / d) for d in sorted(os.listdir(day))] == [
        ["validate_only=true", f"training.seed={seed}"] for seed in (1, 2, 3)]


def test_multiruns_started_in_the_same_second_get_their_own_sweep_dirs(same_second, capsys):
    """The sweep dir is claimed once by the launcher; every job of that multirun resolves the same one."""
    for lr in ("1e-4", "2e-4"):
        main(["--multirun", "validate_only=true", f"training.lr={lr}", "training.seed=1,2"])
    day = same_second / "multirun" / "sft" / "2026-11-27"
    assert sorted(os.listdir(day)) == ["07-00-00", "07-00-00_1"]
    for sweep, lr in zip(("07-00-00", "07-00-00_1"), ("1e-4", "2e-4")):
        assert sorted(p for p in os.listdir(day / sweep) if p != "multirun.yaml") == ["0", "1"]
        assert [overrides_of(day / sweep / j) for j in ("0", "1")] == [
            ["validate_only=True", f"training.lr={float(lr)}", f"training.seed={s}"] for s in (1, 2)]  # as Hydra writes


def test_a_run_dir_named_on_the_command_line_with_results_is_refused_before_hydra_writes(tmp_path, monkeypatch,
                                                                                        capsys):
    monkeypatch.chdir(tmp_path)
    main(["validate_only=true", "hydra.run.dir=outputs/exp1", "training.seed=1"])
    run = tmp_path / "outputs" / "exp1"
    (run / "metrics.json").write_text('{"eval_loss": 1.0}')  # an earlier run's results
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    capsys.readouterr()

    with pytest.raises(SystemExit) as stop:
        main(["validate_only=true", "hydra.run.dir=outputs/exp1", "training.seed=2"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert (f"Error: hydra.run.dir {run} is not empty: a run never overwrites earlier results  "
            f"[hydra.run.dir={run}]") in err
    assert "fix: choose a new hydra.run.dir, or set overwrite_output_dir=true to replace what is there" in err
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before  # .hydra/ and the log untouched
    assert overrides_of(run) == ["validate_only=true", "training.seed=1"]  # hydra.* overrides are in hydra.yaml

    # told to overwrite, the same command goes on
    main(["validate_only=true", "hydra.run.dir=outputs/exp1", "training.seed=3", "overwrite_output_dir=true"])
    assert overrides_of(run) == ["validate_only=true", "training.seed=3", "overwrite_output_dir=true"]
    assert "configuration is valid" in capsys.readouterr().out
