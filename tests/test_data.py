"""Data files: a missing column and a broken JSON line are named, with the file and the fix."""

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
def test_own_data_with_missing_column_names_it(tmp_path):
    from autotrain_hydra.errors import DataError

    f = tmp_path / "d.jsonl"
    f.write_text('{"body": "some text"}\n{"body": "more text"}\n')
    with pytest.raises(DataError, match=r"column 'text' \(data.text_column\) not found in .*d.jsonl; columns there: body"):
        train(tmp_path, "trainer=generic", f"data.path={f}")


@pytest.mark.slow
def test_malformed_jsonl_names_line(tmp_path):
    from autotrain_hydra.errors import DataError

    f = tmp_path / "d.jsonl"
    f.write_text('{"text": "ok"}\n{"text": broken\n')
    with pytest.raises(DataError, match=r"d.jsonl line 2 is not valid JSON"):
        train(tmp_path, "trainer=generic", f"data.path={f}")

