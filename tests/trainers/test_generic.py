"""trainer=generic trains on plain text: padding-free examples by default, blocks with packing, the final train loss as
the objective without eval data."""


import pytest

from tests.helpers import train_lm as train


@pytest.mark.slow
def test_generic_without_eval_data_returns_final_train_loss(tmp_path):
    out, metrics, objective = train(tmp_path, "trainer=generic", "data=text", "data.valid_path=null",
                                    "training.block_size=64", "training.max_steps=6")
    assert metrics["global_step"] == 6 and metrics["objective_name"] == "train_loss"
    assert objective == pytest.approx(metrics["train_loss"])

