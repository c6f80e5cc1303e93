"""trainer=dpo: the reference model (model_ref, a frozen copy, the adapter disabled) and dpo_beta reaching TRL."""


import pytest

from autotrain_hydra import models
from tests.helpers import spy_init, train_in

FAST = ["training.logging_steps=4", "training.warmup_ratio=0"]

GUIDE_EXAMPLES = {
    "dpo_basic": ["trainer=dpo", "training.epochs=2", "training.batch_size=2", "data.prompt_text_column=prompt",
                  "data.rejected_text_column=rejected", "trainer.dpo_beta=0.1"],
    "dpo_ref_lora": ["trainer=dpo", "training.epochs=2", "training.batch_size=4", "data.prompt_text_column=prompt",
                     "data.rejected_text_column=rejected", "trainer.dpo_beta=0.2", "peft=lora", "peft.lora_r=32",
                     "REF", "training.lr=5e-3"],
    "orpo_basic": ["trainer=orpo", "training.epochs=2", "training.batch_size=2", "data.prompt_text_column=prompt",
                   "data.rejected_text_column=rejected"],
    "reward_basic": ["trainer=reward", "training.epochs=3", "training.batch_size=16",
                     "data.rejected_text_column=rejected"],
    "reward_lora": ["trainer=reward", "training.epochs=3", "training.batch_size=32", "data.rejected_text_column=rejected",
                    "peft=lora", "peft.lora_r=8", "training.lr=1e-2"],
}


def train(tmp_path, *overrides):
    return train_in(tmp_path, FAST, *overrides)


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

