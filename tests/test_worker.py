"""One rank of a launched run: its spec in, its result (metrics, or its error as itself) out, read back by the
launching process as a one-process run would have raised it."""

import json
import logging

import pytest
from omegaconf import OmegaConf

from tests.helpers import resolved


@pytest.fixture
def root_logging():
    """The worker sets up the process's logging (it is a process of its own): put it back afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for h in list(root.handlers):
        root.removeHandler(h)
    for h in handlers:
        root.addHandler(h)
    root.setLevel(level)


def spec_for(tmp_path, cfg, rank_file="result.json"):
    spec = {"config": OmegaConf.to_container(cfg, resolve=True), "output_dir": str(tmp_path / "run"),
            "result": str(tmp_path / rank_file), "log_file": str(tmp_path / "train.log")}
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    return str(path)


@pytest.mark.parametrize("rank,result_file", [("0", "result.json"), ("1", "result.json.rank1")])
def test_a_rank_s_error_goes_back_as_itself(tmp_path, monkeypatch, root_logging, rank, result_file):
    from autotrain_hydra import launch, worker
    from autotrain_hydra.errors import ModelLoadError
    from autotrain_hydra.trainers.common import Job

    monkeypatch.setenv("RANK", rank)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    missing = tmp_path / "no-such-model"
    cfg = resolved("trainer=sft", "model=custom", f"model.name={missing}", "training.max_steps=1")
    assert worker.main(spec_for(tmp_path, cfg)) == 1
    result = json.loads((tmp_path / result_file).read_text())
    assert (result["ok"], result["rank"], result["error_type"]) == (False, int(rank), "ModelLoadError")
    assert str(missing) in result["message"]
    if rank == "0":  # rank 0 writes the run's log; the others only stderr
        assert "[rank 0/2]" in (tmp_path / "train.log").read_text()
    else:
        assert not (tmp_path / "train.log").exists()
    p = launch.Plan(2, 1, 0, None, 1234, "ddp.yaml", "no", True)
    with pytest.raises(ModelLoadError) as e:  # the launching process raises what the rank raised
        launch._collect(Job(cfg=cfg, output_dir=str(tmp_path / "run")), str(tmp_path / "result.json"), 1, p)
    assert str(e.value) == result["message"]


def test_a_config_error_in_a_rank_keeps_its_issues():
    from autotrain_hydra import launch, worker
    from autotrain_hydra.schema.errors import ConfigError, Report

    report = Report()
    report.error("training.lr must be a number > 0", "training.lr", -1, "training.lr=2e-5")
    report.warn("dpo_beta only applies to DPO trainer, will be ignored", "trainer.dpo_beta", 0.1)
    try:
        raise ConfigError(report, before_anything=False)
    except ConfigError as e:
        result = json.loads(json.dumps(worker._error_result(e, 1)))
    error = launch._error(result)
    assert isinstance(error, ConfigError)
    assert [i.render() for i in error.report.issues] == [i.render() for i in report.issues]


def test_an_unknown_error_names_the_rank():
    from autotrain_hydra import launch
    from autotrain_hydra.errors import RunError

    error = launch._error({"ok": False, "rank": 3, "error_type": "ZeroDivisionError", "error_module": "builtins",
                           "message": "division by zero"})
    assert isinstance(error, RunError)
    assert str(error).startswith("rank 3 failed: ZeroDivisionError: division by zero")
