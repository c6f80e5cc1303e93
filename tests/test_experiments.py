"""Every shipped experiment composes and passes validation, run from a folder laid out as the guide's commands
expect (./data/*.jsonl, ./reward_model)."""

import shutil

import pytest

from autotrain_hydra import paths
from autotrain_hydra.compat.hydra import compose_config
from autotrain_hydra.schema.resolve import resolve
from autotrain_hydra.schema.rules import validate
from tests.helpers import fake_reward_dir

EXPERIMENTS = sorted(p.stem for p in (paths.config_dir() / "experiment").glob("*.yaml"))
GUIDE_FILES = {"train.jsonl": "text.jsonl", "instructions.jsonl": "chat.jsonl", "test.jsonl": "chat_valid.jsonl",
               "preferences.jsonl": "preference.jsonl", "prompts.jsonl": "prompts.jsonl",
               "feedback.jsonl": "feedback.jsonl"}


def guide_layout(root):
    """./data/<the guide's file names> (copies of the shipped samples) and ./reward_model."""
    (root / "data").mkdir()
    for name, sample in GUIDE_FILES.items():
        shutil.copy(paths.ASSETS_DIR / "data" / sample, root / "data" / name)
    fake_reward_dir(root)  # ./reward_model
    return root


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_composes_and_validates(name, tmp_path, monkeypatch):
    monkeypatch.chdir(guide_layout(tmp_path))
    if name == "reward_bert_for_ppo":  # it writes ./reward_model: validated before that exists
        shutil.rmtree(tmp_path / "reward_model")
    overrides = [f"+experiment={name}"]
    cfg = compose_config(overrides)
    assert cfg.data.path.startswith("./data/")
    report = validate(resolve(cfg, overrides).cfg, overrides)
    assert not report.errors, report.render()


def test_experiment_settings_win_over_model_preset():
    cfg = compose_config(["+experiment=sft_mistral_chatml", "model=tiny"])
    assert cfg.model.name == "tiny" and cfg.training.lr == 2e-5 and cfg.trainer.chat_template == "chatml"
    cfg = compose_config(["+experiment=sft_mistral_chatml"])
    assert cfg.model.name == "mistralai/Mistral-7B-v0.1"
