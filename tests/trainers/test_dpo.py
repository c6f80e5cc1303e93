"""trainer=dpo: the reference model (model_ref, a frozen copy, the adapter disabled) and dpo_beta reaching TRL."""

import pytest

from autotrain_hydra import models
from tests.helpers import spy_init
from tests.helpers import train_pairs as train


@pytest.mark.slow
def test_dpo_reference_model_choice(tmp_path):
    out, m, _ = train(tmp_path, "trainer=dpo", "peft=lora", f"trainer.model_ref={models.tiny_model_dir()}",
                      "training.lr=5e-3")  # the guide's "with reference model and LoRA" example
    assert m["notes"] == [f"reference model: {models.tiny_model_dir()}"]
    assert m["eval_logp_margin_after"] > m["eval_logp_margin_before"]


@pytest.mark.slow
def test_dpo_beta_reaches_trl(tmp_path, monkeypatch):
    from trl import DPOConfig

    seen = spy_init(monkeypatch, DPOConfig)
    train(tmp_path, "trainer=dpo", "trainer.dpo_beta=0.3", "training.max_steps=1")
    assert seen["beta"] == 0.3

