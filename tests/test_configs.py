"""The shipped configs (configs/): every trainer x peft x feature combination composes through Hydra and validates as
the rules say; every preset composes; the tiny preset's tuning applies to the tiny model only."""

import itertools

import pytest

from autotrain_hydra import registry
from omegaconf import OmegaConf

from autotrain_hydra.compat.hydra import compose_config
from autotrain_hydra.registry import TRAINERS
from autotrain_hydra.schema.resolve import resolve
from autotrain_hydra.schema.rules import validate
from tests.helpers import check, fake_reward_dir, messages

FEATURE_SETS = [list(c) for n in range(4) for c in itertools.combinations(["distillation", "sweep", "eval"], n)]


@pytest.mark.parametrize("trainer,peft,features", [
    (t, p, f) for t in TRAINERS for p in ("none", "lora") for f in FEATURE_SETS],
    ids=lambda x: ",".join(x) if isinstance(x, list) else x)
def test_combination_composes_and_validates(trainer, peft, features, tmp_path):
    overrides = [f"trainer={trainer}", f"peft={peft}", f"features=[{','.join(features)}]"]
    if "distillation" in features:
        overrides.append("distillation.teacher_model=some/teacher")
    if trainer == "ppo":
        overrides.append(f"trainer.rl.reward_model_path={fake_reward_dir(tmp_path)}")
        if "sweep" in features:  # PPO reports no eval loss: its sweeps name a reward metric
            overrides += ["sweep.metric=eval_mean_reward_after", "sweep.direction=maximize"]
    if trainer == "reward" and "eval" in features:
        overrides.append("eval.metrics=[accuracy]")
    cfg = compose_config(overrides)
    assert cfg.trainer.name == trainer and cfg.peft.method == peft
    for f in ("distillation", "sweep", "eval"):
        assert cfg[f].enabled == (f in features)
    cfg = resolve(cfg, overrides).cfg
    assert cfg.data.path, "the trainer's sample data is picked"
    report = validate(cfg, overrides)
    errors = [i.message for i in report.errors]
    if trainer in ("ppo", "grpo", "kto") and "distillation" in features:
        assert errors == [f"Distillation is not supported with {registry.spec(trainer).label} trainer"]
    else:
        assert errors == []
    if trainer == "reward" and "distillation" in features:
        assert "Distillation is not supported for reward models, will be ignored" in [i.message for i in report.warnings]


@pytest.mark.parametrize("trainer,sample,columns", [
    ("generic", "text.jsonl", ("text", None, None)), ("sft", "chat.jsonl", ("messages", None, None)),
    ("dpo", "preference.jsonl", ("chosen", "prompt", "rejected")),
    ("reward", "preference.jsonl", ("chosen", "prompt", "rejected")), ("ppo", "prompts.jsonl", ("prompt", "prompt", None)),
    ("grpo", "prompts.jsonl", ("prompt", "prompt", None)), ("kto", "feedback.jsonl", ("completion", "prompt", None))])
def test_trainer_picks_matching_sample(trainer, sample, columns):
    cfg = resolve(compose_config([f"trainer={trainer}"])).cfg
    assert cfg.data.path.endswith(sample)
    assert (cfg.data.text_column, cfg.data.prompt_text_column, cfg.data.rejected_text_column) == columns


def test_own_data_is_kept(tmp_path):
    cfg = compose_config([f"data.path={tmp_path}/x.jsonl", "data.text_column=body"])
    resolved = resolve(cfg)
    assert resolved.notes == [] and resolved.cfg == cfg
    assert cfg.data.text_column == "body" and cfg.data.path.endswith("x.jsonl")


def test_every_model_preset_composes():
    from autotrain_hydra import paths

    names = sorted(p.stem for p in (paths.config_dir() / "model").glob("*.yaml"))
    assert {"tiny", "llama2_7b", "llama2_13b", "mistral_7b", "bert_base_uncased", "roberta_large"} <= set(names)
    for name in names:
        cfg = compose_config([f"model={name}"])
        assert cfg.model.name or name == "custom"
    # model=custom names no model: the rules ask for one
    assert messages(check("model=custom"), "error") == ["sft requires model.name"]
    assert not check("model=custom", "model.name=./x", filesystem=False).errors


def test_tiny_preset_lr_loses_to_command_line():
    assert compose_config([]).training.lr == 1e-3
    assert compose_config(["training.lr=3e-5"]).training.lr == 3e-5
    assert compose_config(["model=llama2_7b"]).training.lr == 2e-5  # the schema (TRL) default


def test_tiny_preset_tuning_applies_to_the_tiny_model_only():
    """Bug: `model.name=./my-model` on the default model=tiny preset kept its lr=1e-3 and block_size=128."""
    cfg = compose_config(["trainer=sft", "model.name=./my-model"])
    assert (cfg.training.lr, cfg.training.block_size) == (2e-5, 1024)  # the guide's defaults
    cfg = compose_config(["model.name=./my-model", "training.block_size=256"])
    assert (cfg.training.lr, cfg.training.block_size) == (2e-5, 256)  # a typed value wins
    assert (compose_config([]).training.lr, compose_config([]).training.block_size) == (1e-3, 128)
    resolved = OmegaConf.to_container(compose_config(["model=custom", "model.name=x"]).training, resolve=True)
    assert resolved["lr"] == 2e-5 and resolved["block_size"] == 1024
