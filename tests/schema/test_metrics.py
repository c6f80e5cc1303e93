"""What a run reports and a sweep optimises, read from the registry."""

import pytest

from autotrain_hydra.schema.metrics import benchmark_entries, eval_metrics, reported_metrics, sweep_objective
from tests.helpers import compose, resolved


@pytest.mark.parametrize("trainer,default", [("sft", ["perplexity"]), ("reward", ["accuracy", "reward_margin"]),
                                             ("ppo", ["mean_reward"])])
def test_each_trainer_s_default_evaluation(trainer, default):
    assert eval_metrics(compose(f"trainer={trainer}")) == default
    assert eval_metrics(compose("eval.metrics='[\"bleu\", \"rouge\"]'")) == ["bleu", "rouge"]
    assert eval_metrics(compose("eval.metrics='bleu,chrf'")) == ["bleu", "chrf"]


def test_reported_metrics_follow_the_eval_data_and_the_evaluation():
    assert "eval_loss" in reported_metrics(resolved("trainer=dpo"))  # the sample has validation pairs
    assert "eval_loss" not in reported_metrics(resolved("trainer=dpo", "data.valid_path=null"))
    assert "eval_mean_reward_after" in reported_metrics(resolved("trainer=ppo", "data.valid_path=null"))
    with_eval = reported_metrics(resolved("features=[eval]", "eval.metrics=[rouge,bertscore]"))
    assert {"eval/rouge1", "eval/rougeLsum", "eval/bertscore_f1"} <= with_eval


def test_sweep_objective_defaults_to_the_trainer_s_and_its_direction():
    assert sweep_objective(compose("features=[sweep]")) == ("eval_loss", "minimize")
    assert sweep_objective(compose("features=[sweep]", "trainer=ppo")) == ("eval_mean_reward_after", "maximize")
    assert sweep_objective(compose("features=[sweep]", "sweep.metric=eval_accuracy")) == ("eval_accuracy", "maximize")
    assert sweep_objective(compose("features=[sweep]", "sweep.metric=objective")) == ("objective", None)
    assert sweep_objective(compose("features=[sweep]", "sweep.direction=maximize")) == ("eval_loss", "maximize")


def test_benchmark_entries_from_a_list_or_a_string():
    assert benchmark_entries("a, b,,c") == ["a", "b", "c"] and benchmark_entries(["x"]) == ["x"]
    assert benchmark_entries(None) == []
