"""Each TRL internal that autotrain_hydra.compat.trl uses, checked against the installed TRL: an upgrade that
changes one fails here, naming the hook."""

import inspect

import pytest


def test_dpo_prepare_dataset():
    from trl import DPOTrainer

    assert list(inspect.signature(DPOTrainer._prepare_dataset).parameters)[1:] == [
        "dataset", "processing_class", "args", "dataset_name"], "DPOTrainer._prepare_dataset changed"


def test_orpo_tokenize_row_and_its_home():
    from autotrain_hydra.compat.trl import orpo_classes

    _, orpo = orpo_classes()
    assert list(inspect.signature(orpo.tokenize_row).parameters)[1:3] == ["feature", "model"]


def test_reward_trainer_keeps_metrics_per_mode():
    from trl import RewardTrainer

    source = inspect.getsource(RewardTrainer.__init__)
    assert 'self._metrics = {"train": defaultdict(list), "eval": defaultdict(list)}' in source, \
        "RewardTrainer._metrics changed: update autotrain_hydra.compat.trl.record_metric"
    assert "self._metrics[mode]" in inspect.getsource(RewardTrainer.log), "RewardTrainer.log no longer averages them"


def test_orpo_missing_from_trl_is_a_clear_error_with_exit_1(monkeypatch, tmp_path, capsys):
    """TRL without trl.experimental.orpo: a UserError (exit 1) naming the fix, no traceback (it was a traceback)."""
    import builtins

    from autotrain_hydra.app import main
    from autotrain_hydra.compat import trl
    from autotrain_hydra.errors import TrainerUnavailable

    real_import = builtins.__import__

    def fake(name, *a, **k):
        if name.startswith("trl.experimental.orpo"):
            raise ImportError("No module named 'trl.experimental.orpo'")
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", fake)
    with pytest.raises(TrainerUnavailable, match=r"trainer=orpo needs TRL's ORPOTrainer .* pip install trl==1.16.0"):
        trl.orpo_classes()
    monkeypatch.chdir(tmp_path)
    assert main(["trainer=orpo", "training.max_steps=1"]) == 1
    err = capsys.readouterr().err
    assert "Error: trainer=orpo needs TRL's ORPOTrainer" in err and "Traceback" not in err
