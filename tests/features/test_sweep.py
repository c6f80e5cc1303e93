"""The sweep's W&B backend (its spec, a clear error without a server) and the storage URL kept out of written files."""

import pytest

from tests.helpers import compose, composed_with_hydra


def test_storage_interpolation_stays_unresolved_in_the_sweeper_node_and_passwords_are_redacted(monkeypatch):
    from omegaconf import OmegaConf

    from autotrain_hydra.features.sweep import redact

    monkeypatch.setenv("OPTUNA_STORAGE", "postgresql://optuna:s3cr@t@db:5432/studies")
    cfg = composed_with_hydra("features=[sweep]", "sweep.storage=${oc.env:OPTUNA_STORAGE}")
    written = OmegaConf.to_yaml(cfg.hydra.sweeper)  # what Hydra writes to .hydra/hydra.yaml
    assert "s3cr" not in written and "${sweep.storage}" in written
    assert redact(cfg.sweep.storage) == "postgresql://optuna:***@db:5432/studies"
    assert redact("sqlite:////shared/optuna.db") == "sqlite:////shared/optuna.db"


def test_wandb_spec_from_the_same_space():
    from autotrain_hydra.features.sweep import wandb_spec

    cfg = compose("features=[sweep]", "sweep.backend=wandb", "sweep.n_trials=5", "sweep.direction=minimize",
                  "+sweep.params={training.lr: 'tag(log, interval(1e-5, 1e-3))', peft.lora_r: [8, 16], "
                  "training.warmup_ratio: 'interval(0.0, 0.2)', training.gradient_accumulation: 'int(interval(1, 4))'}")
    spec = wandb_spec(cfg, ["features=[sweep]", "sweep.backend=wandb", "trainer=sft", "training.lr=1e-3"])
    assert spec["method"] == "bayes" and spec["metric"] == {"name": "eval_loss", "goal": "minimize"}
    assert spec["run_cap"] == 5
    assert spec["parameters"] == {
        "training.lr": {"distribution": "log_uniform_values", "min": 1e-5, "max": 1e-3},
        "peft.lora_r": {"values": [8, 16]},
        "training.warmup_ratio": {"distribution": "uniform", "min": 0.0, "max": 0.2},
        "training.gradient_accumulation": {"distribution": "int_uniform", "min": 1, "max": 4}}
    cmd = spec["command"]
    assert cmd[:4] == ["${env}", "${interpreter}", "-m", "autotrain_hydra"] and cmd[-1] == "${args_no_hyphens}"
    assert "trainer=sft" in cmd and "training.lr=1e-3" not in cmd and "sweep.enabled=false" in cmd


def test_wandb_backend_without_server_is_a_clear_error(tmp_path, monkeypatch):
    from autotrain_hydra.errors import InputError
    from autotrain_hydra.features.sweep import run_wandb_sweep

    monkeypatch.setenv("WANDB_MODE", "offline")
    cfg = compose("features=[sweep]", "sweep.backend=wandb")
    with pytest.raises(InputError) as e:
        run_wandb_sweep(cfg, ["features=[sweep]", "sweep.backend=wandb"], spec_dir=str(tmp_path))
    assert e.value.exit_code == 2
    err = e.value.render()
    assert "Error: sweep.backend=wandb needs a reachable W&B server: WANDB_MODE=offline" in err
    (spec,) = tmp_path.glob("wandb_sweep-sft-*.yaml")
    assert f"wandb sweep {spec}" in err

