"""The errors a user can cause, their exit codes and what they print."""

import pytest

from autotrain_hydra import errors
from autotrain_hydra.schema.errors import ConfigError, Issue, Report


@pytest.mark.parametrize("cls,code", [(errors.DataError, 2), (errors.HardwareError, 2), (errors.CheckpointError, 2),
                                      (errors.InputError, 2), (errors.NumericalError, 1), (errors.ModelLoadError, 1),
                                      (errors.TrainerUnavailable, 1), (errors.BenchmarkError, 1),
                                      (errors.NothingTrained, 1), (errors.SweepFailed, 1), (errors.Stopped, 130)])
def test_each_error_carries_its_exit_code(cls, code):
    assert cls.exit_code == code and issubclass(cls, errors.UserError)


def test_what_they_print():
    assert errors.DataError("bad line 3").render() == "Error: bad line 3"
    assert errors.Stopped("signal 15", "before the run finished").render() == \
        "Stopped (signal 15) before the run finished"
    report = Report()
    report.warn("w", "a.b", 1)
    report.error("e", "c.d", None, "do this")
    assert ConfigError(report).render().endswith("the configuration has 1 error; nothing was loaded or written.")
    assert ConfigError(report, before_anything=False).render().endswith("the run stopped before training.")
    assert ConfigError(report).exit_code == 2


def test_an_issue_travels_as_a_dict():
    issue = Issue("error", "m", "k", None, "f")
    assert Issue.from_dict(issue.to_dict()) == issue and issue.to_dict()["value"] is None
    bare = Issue("warning", "m")
    assert "value" not in bare.to_dict() and Issue.from_dict(bare.to_dict()) == bare
