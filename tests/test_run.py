"""One job (run.run / run.execute): settings this machine cannot run are refused before a model loads, validate_only
loads nothing, a used dir is never overwritten."""

import json

import pytest
import torch

from autotrain_hydra import models
from autotrain_hydra.run import run
from autotrain_hydra.compat.hydra import compose_config
from autotrain_hydra.schema.errors import ConfigError

FAST = ["training.epochs=4", "training.batch_size=8", "training.logging_steps=2", "training.warmup_ratio=0"]


def train(tmp_path, *overrides):
    out = tmp_path / "out"
    cfg = compose_config([*FAST, f"output_dir={out}", *overrides])
    objective = run(cfg, overrides=list(overrides))
    metrics = json.loads((out / "metrics.json").read_text())
    return out, metrics, objective


@pytest.mark.slow
def test_fp16_on_cpu_is_refused_before_loading(tmp_path, monkeypatch):
    from autotrain_hydra.errors import HardwareError

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    monkeypatch.setattr(models, "load_causal_lm", lambda *a, **k: pytest.fail("model loaded"))
    with pytest.raises(HardwareError, match="training.mixed_precision=fp16 needs a CUDA GPU"):
        train(tmp_path, "training.mixed_precision=fp16")


@pytest.mark.slow
def test_validate_only_loads_nothing(tmp_path, capsys):
    cfg = compose_config(["trainer=orpo", "validate_only=true", f"output_dir={tmp_path}/o"])
    assert run(cfg) is None
    assert "configuration is valid: trainer=orpo" in capsys.readouterr().out
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_run_dir_with_results_is_not_overwritten(tmp_path):
    run_dir = tmp_path / "run"
    (run_dir / ".hydra").mkdir(parents=True)
    (run_dir / "train.log").write_text("")
    cfg = compose_config([*FAST, "training.max_steps=1", "trainer=generic", "training.block_size=64"])
    run(cfg, run_dir=str(run_dir))  # Hydra's own files do not count
    assert (run_dir / "model.safetensors").is_file()
    stamp = (run_dir / "model.safetensors").stat().st_mtime_ns
    with pytest.raises(ConfigError, match="is not empty: a run never overwrites earlier results"):
        run(cfg, run_dir=str(run_dir))
    assert (run_dir / "model.safetensors").stat().st_mtime_ns == stamp

