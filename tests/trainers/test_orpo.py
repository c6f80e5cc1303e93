"""trainer=orpo: orpo_alpha is ORPO's beta (lambda in the paper)."""


import pytest

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
def test_orpo_alpha_is_orpo_beta(tmp_path, monkeypatch):
    from trl.experimental.orpo import ORPOConfig

    seen = spy_init(monkeypatch, ORPOConfig)
    _, m, _ = train(tmp_path, "trainer=orpo", "trainer.orpo_alpha=0.5", "trainer.dpo_beta=0.3",
                    "training.max_steps=1")
    assert seen["beta"] == 0.5
    assert m["warnings"] == ["dpo_beta only applies to DPO trainer, will be ignored"]

