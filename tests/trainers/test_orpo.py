"""trainer=orpo: orpo_alpha is ORPO's beta (lambda in the paper)."""

import pytest

from tests.helpers import spy_init
from tests.helpers import train_pairs as train


@pytest.mark.slow
def test_orpo_alpha_is_orpo_beta(tmp_path, monkeypatch):
    from trl.experimental.orpo import ORPOConfig

    seen = spy_init(monkeypatch, ORPOConfig)
    _, m, _ = train(tmp_path, "trainer=orpo", "trainer.orpo_alpha=0.5", "trainer.dpo_beta=0.3",
                    "training.max_steps=1")
    assert seen["beta"] == 0.5
    assert m["warnings"] == ["dpo_beta only applies to DPO trainer, will be ignored"]

