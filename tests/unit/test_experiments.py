"""Every shipped experiment composes and passes validation (its data path given as a user would)."""


import pytest

from autotrain_hydra import paths
from autotrain_hydra.schema.compose import compose_config
from autotrain_hydra.schema.rules import resolve_data_sample, validate

EXPERIMENTS = sorted(p.stem for p in (paths.config_dir() / "experiment").glob("*.yaml"))


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_composes_and_validates(name):
    overrides = [f"+experiment={name}"]
    cfg = compose_config(overrides)
    resolve_data_sample(cfg)
    report = validate(cfg, overrides)
    assert not report.errors, report.render()


def test_experiment_settings_win_over_model_preset():
    cfg = compose_config(["+experiment=sft_mistral_chatml", "model=tiny"])
    assert cfg.model.name == "tiny" and cfg.training.lr == 2e-5 and cfg.trainer.chat_template == "chatml"
    cfg = compose_config(["+experiment=sft_mistral_chatml"])
    assert cfg.model.name == "mistralai/Mistral-7B-v0.1"
