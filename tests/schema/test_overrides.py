"""The pre-composition check of command-line overrides: all problems at once, exit code 2."""

import pytest

from autotrain_hydra import paths
from autotrain_hydra.app import main
from autotrain_hydra.schema.overrides import check_overrides, extra_config_dirs


def run_check(*overrides):
    return check_overrides(overrides, [paths.config_dir()])


def test_typo_key_gets_did_you_mean():
    report, good = run_check("trainer.dpo_bta=0.2", "training.lr=1e-4")
    (err,) = report.errors
    assert err.message == "unknown key trainer.dpo_bta" and "did you mean trainer.dpo_beta?" in err.fix
    assert good == ["training.lr=1e-4"]


def test_wrong_type_is_reported():
    (err,) = run_check("training.lr=abc")[0].errors
    assert err.key == "training.lr" and "wrong type" in err.message


def test_unknown_group_option_did_you_mean():
    (err,) = run_check("trainer=dp0")[0].errors
    assert err.message == "unknown option dp0 for config group trainer" and "trainer=dpo" in err.fix


def test_removed_distillation_trainer_tells_replacement():
    (err,) = run_check("trainer=distillation")[0].errors
    assert err.message.startswith("trainer=distillation was removed")
    assert "trainer=sft features=[distillation] distillation.teacher_model=<teacher>" in err.fix


def test_plus_on_existing_key():
    (err,) = run_check("+trainer.dpo_beta=0.2")[0].errors
    assert "drop the '+': trainer.dpo_beta=0.2" in err.fix


def test_sweeps_and_hydra_keys_pass():
    report, good = run_check("training.lr=1e-5,1e-4", "trainer=dpo,orpo", "hydra.job.chdir=false", "features=[eval]",
                             "peft=lora")
    assert not report.errors and len(good) == 5


def test_extra_config_dirs(tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "mine.yaml").write_text("defaults:\n  - base_model\nname: ./m\n")
    dirs, complete = extra_config_dirs(str(tmp_path), [])
    assert not check_overrides(["model=mine"], [paths.config_dir(), *dirs])[0].errors
    assert extra_config_dirs(None, ["hydra.searchpath=[pkg://x.y]"])[1] is False


def test_precheck_collects_override_and_rule_errors(capsys):
    assert main(["trainer=ppo", "features=[distillation]", "trainer.dpo_bta=1", "training.lr=-1"]) == 2
    err = capsys.readouterr().err
    for text in ("unknown key trainer.dpo_bta", "Distillation is not supported with PPO trainer",
                 "ppo requires trainer.rl.reward_model_path", "training.lr must be a number > 0",
                 "the configuration has 4 errors"):
        assert text in err, err
    assert "Traceback" not in err


@pytest.mark.parametrize("argv", [["validate_only=true"], ["trainer=dpo", "validate_only=true"], ["--cfg", "job"],
                                  ["--hydra-help"]])
def test_precheck_passes_good_command_lines(argv, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 0
    assert list(tmp_path.iterdir()) == []  # nothing was written


def test_a_config_group_set_to_null_is_named():
    report, good = run_check("trainer=null", "features=null", "peft=lora")
    assert [(e.message, e.fix) for e in report.errors] == [
        ("config group trainer needs an option, not null", "choose one of dpo, generic, grpo, kto, orpo, ppo, reward, sft"),
        ("config group features needs an option, not null", "features=[] for none")]
    assert good == ["peft=lora"]
