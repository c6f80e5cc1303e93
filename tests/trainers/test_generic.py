"""trainer=generic trains on plain text: padding-free examples by default, blocks with packing, the final train loss as
the objective without eval data."""

import json

import pytest

from autotrain_hydra.run import run
from autotrain_hydra.compat.hydra import compose_config

FAST = ["training.epochs=4", "training.batch_size=8", "training.logging_steps=2", "training.warmup_ratio=0"]


def train(tmp_path, *overrides):
    out = tmp_path / "out"
    cfg = compose_config([*FAST, f"output_dir={out}", *overrides])
    objective = run(cfg, overrides=list(overrides))
    metrics = json.loads((out / "metrics.json").read_text())
    return out, metrics, objective


@pytest.mark.slow
def test_generic_without_eval_data_returns_final_train_loss(tmp_path):
    out, metrics, objective = train(tmp_path, "trainer=generic", "data=text", "data.valid_path=null",
                                    "training.block_size=64", "training.max_steps=6")
    assert metrics["global_step"] == 6 and metrics["objective_name"] == "train_loss"
    assert objective == pytest.approx(metrics["train_loss"])

