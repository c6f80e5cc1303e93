"""The trainer registry is the one place a trainer is declared: every layer agrees with it."""

import importlib.util

import pytest

from autotrain_hydra import paths, registry
from autotrain_hydra.schema.keys import schema_keys
from autotrain_hydra.schema.params import PARAM_BY_KEY, PARAMS


def test_every_trainer_has_its_config_file_and_its_module():
    files = {p.stem for p in (paths.config_dir() / "trainer").glob("*.yaml")}
    assert files == set(registry.TRAINERS)
    for name, spec in registry.SPECS.items():
        assert importlib.util.find_spec(spec.module) is not None, spec.module
        assert (paths.config_dir() / "data" / f"{spec.data_shape}.yaml").is_file(), spec.data_shape


@pytest.mark.parametrize("name", registry.TRAINERS)
def test_what_a_trainer_declares_are_schema_keys(name):
    spec = registry.spec(name)
    leaves = set(schema_keys(leaves_only=True))
    assert spec.reads <= leaves and set(spec.requires) <= leaves
    assert all(registry.is_trainer_scoped(k) for k in spec.reads)
    assert set(spec.default_eval_metrics) <= set(spec.eval_metrics)
    assert spec.sweep_metric in spec.reported_metrics(has_eval_data=True)
    assert registry.metric_direction(spec.sweep_metric) is not None
    assert set(spec.sweep_space) <= leaves


def test_every_trainer_scoped_key_of_the_rules_table_applies_somewhere():
    for p in PARAMS:
        if registry.is_trainer_scoped(p.key):
            assert p.trainers, f"{p.key} is read by no trainer"


def test_applicability_in_the_rules_table_is_the_registry_s():
    assert PARAM_BY_KEY["training.packing"].trainers == {"generic", "sft"}
    assert PARAM_BY_KEY["training.torch_compile"].trainers == set(registry.TRAINERS) - {"ppo"}
    assert PARAM_BY_KEY["trainer.model_ref"].trainers == {"dpo", "orpo", "kto"}
    assert PARAM_BY_KEY["data.rejected_text_column"].required == {"dpo", "orpo", "reward"}
    assert PARAM_BY_KEY["training.lr"].required == set(registry.TRAINERS)


def test_labels_and_directions():
    assert registry.label(["dpo", "orpo"]) == "DPO/ORPO trainers" and registry.label(["ppo"]) == "PPO trainer"
    assert registry.metric_direction("eval_loss") == "minimize"
    assert registry.metric_direction("eval/rougeL") == "maximize"
    assert registry.metric_direction("eval_mean_reward_after") == "maximize"
    assert registry.metric_direction("objective") is None
