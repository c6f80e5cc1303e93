"""The search space, the sweep metric and the sweep rules, without running a trial."""

import pytest

from autotrain_hydra import paths
from autotrain_hydra.schema.metrics import reported_metrics
from autotrain_hydra.schema.resolve import resolve
from autotrain_hydra.schema.rules import validate
from autotrain_hydra.schema.sweep_space import Dist, SweepSpecError, legacy_dist, search_space
from tests.helpers import check, compose, fake_reward_dir, messages, resolved


def test_json_and_yaml_params_give_the_same_space():
    as_json = compose("features=[sweep]", """sweep.params='{"training.lr": "tag(log, interval(1e-5, 1e-3))", """
                      """"peft.lora_r": [8, 16], "trainer.dpo_beta": {"type": "float", "low": 0.05, "high": 0.5}}'""")
    as_yaml = compose("features=[sweep]", "+sweep.params={training.lr: 'tag(log, interval(1e-5, 1e-3))', "
                      "peft.lora_r: [8, 16], trainer.dpo_beta: {type: float, low: 0.05, high: 0.5}}")
    expected = {"training.lr": "tag(log, interval(1e-5, 1e-3))", "peft.lora_r": "choice(8, 16)",
                "trainer.dpo_beta": "interval(0.05, 0.5)"}
    assert search_space(as_json) == expected == search_space(as_yaml)


def test_guide_names_and_types_convert():
    cfg = compose("features=[sweep]", """sweep.params='{"lr": {"type": "loguniform", "low": 1e-5, "high": 1e-3}, """
                  """"lora_r": {"type": "int", "low": 4, "high": 64, "log": true}, "optimizer": ["sgd", "adafactor"]}'""")
    assert search_space(cfg) == {"training.lr": "tag(log, interval(1e-05, 0.001))",
                                 "peft.lora_r": "tag(log, int(interval(4, 64)))",
                                 "training.optimizer": 'choice("sgd", "adafactor")'}


def test_default_space_per_trainer_and_lora():
    assert search_space(compose("features=[sweep]", "trainer=dpo")) == {
        "training.lr": "tag(log, interval(1e-6, 1e-2))", "trainer.dpo_beta": "interval(0.05, 0.5)"}
    assert "peft.lora_r" in search_space(compose("features=[sweep]", "peft=lora"))


def test_bad_space_is_an_error_before_any_trial():
    report = check("features=[sweep]", """sweep.params='{"lr": {"type": "gaussian", "low": 1, "high": 2}}'""")
    assert messages(report, "error") == ["sweep.params: lr: unknown parameter type 'gaussian' (float, int, "
                                         "categorical, loguniform)"]
    report = check("features=[sweep]", """sweep.params='{"lrr": "interval(1, 2)"}'""")
    assert messages(report, "error") == ["sweep.params: sweep.params: unknown key 'lrr'"]
    with pytest.raises(SweepSpecError):
        search_space(compose("features=[sweep]", """sweep.params='{"lr": {"type": "int"}}'"""))


def test_metric_must_be_reported():
    cfg = resolved("trainer=sft")  # the sample has validation data: eval metrics are reported
    assert "eval_loss" in reported_metrics(cfg)
    report = check("features=[sweep]", "sweep.metric=accuracy")
    (err,) = report.errors
    assert err.message == "sweep.metric accuracy is not a metric this run reports"
    assert "eval_loss" in err.fix
    assert not check("features=[sweep]", "trainer=reward", "sweep.metric=eval_accuracy",
                     "sweep.direction=maximize").errors
    ppo = check("features=[sweep]", "trainer=ppo", f"trainer.rl.reward_model_path={fake_reward_dir()}",
                "sweep.metric=eval_loss")
    assert messages(ppo, "error") == ["sweep.metric eval_loss is not a metric this run reports (PPO reports no "
                                      "eval loss: its eval metrics are eval_mean_reward_after, "
                                      "eval_mean_reward_before)"]


def test_each_trainer_sweeps_by_default_on_a_metric_it_reports():
    """Bug: trainer=ppo features=[sweep] without sweep.metric failed (the default eval_loss is not PPO's)."""
    from autotrain_hydra import registry

    for trainer in registry.TRAINERS:
        extra = [f"trainer.rl.reward_model_path={fake_reward_dir()}"] if trainer == "ppo" else []
        overrides = (f"trainer={trainer}", "features=[sweep]", *extra)
        cfg = resolved(*overrides)
        assert cfg.sweep.metric == registry.spec(trainer).sweep_metric in reported_metrics(cfg)
        assert cfg.sweep.direction == ("maximize" if trainer in ("ppo", "grpo") else "minimize")
        assert not check(*overrides).errors, check(*overrides).render()


def test_sweep_on_eval_loss_without_eval_data_holds_out_a_slice():
    """The guide's ORPO sweep example: one data file, --sweep-metric eval_loss."""
    path = str(paths.ASSETS_DIR / "data" / "preference.jsonl")
    cfg = compose("trainer=orpo", "features=[sweep]", f"data.path={path}", "data.prompt_text_column=prompt",
                  "data.rejected_text_column=rejected")
    out = resolve(cfg)
    assert out.cfg.data.valid_fraction == 0.1 and any("holding out 10% of the training rows" in n for n in out.notes)
    assert "eval_loss" in reported_metrics(out.cfg)
    assert not validate(out.cfg, []).errors
    for given in ("data.valid_fraction=0.2", f"data.valid_path={path}"):  # eval data given: nothing changes
        out = resolve(compose("trainer=orpo", "features=[sweep]", f"data.path={path}", given))
        assert not any("holding out" in n for n in out.notes)
        assert out.cfg.data.valid_fraction in (None, 0.2)
    out = resolve(compose("trainer=orpo", f"data.path={path}"))  # no sweep: no hold-out
    assert not any("holding out" in n for n in out.notes) and out.cfg.data.valid_fraction is None


def test_sweep_keys_without_feature_warn():
    assert messages(check("sweep.n_trials=5"), "warning") == [
        "sweep_n_trials only applies when sweep is enabled (features=[sweep]), will be ignored"]


def test_a_sweeper_setting_given_twice_with_two_values_is_an_error():
    (err,) = check("features=[sweep]", "sweep.n_trials=3", "hydra.sweeper.n_trials=2").errors
    assert err.message == ("sweep.n_trials and hydra.sweeper.n_trials are both given, with different values: a "
                           "sweep has one")
    assert not check("features=[sweep]", "sweep.n_trials=2", "hydra.sweeper.n_trials=2").errors


@pytest.mark.parametrize("name", sorted(p.stem for p in (paths.config_dir() / "hparams_search").glob("*.yaml")))
def test_hparams_search_presets(name):
    trainer = name.split("_")[0]
    extra = [f"trainer.rl.reward_model_path={fake_reward_dir()}"] if trainer == "ppo" else []
    report = check(f"hparams_search={name}", *extra)
    assert not report.errors, report.render()
    cfg = compose(f"hparams_search={name}")
    assert cfg.trainer.name == trainer and cfg.sweep.enabled and len(search_space(cfg)) >= 2


def test_enhanced_eval_metrics_can_be_swept():
    report = check("features=[sweep,eval]", "eval.metrics=[bleu,rouge]", "sweep.metric=eval/rougeL",
                   "sweep.direction=maximize")
    assert not report.errors, report.render()
    assert messages(check("features=[sweep,eval]", "sweep.metric=eval/bleu"), "error") == [
        "sweep.metric eval/bleu is not a metric this run reports (enhanced-evaluation metrics are those of "
        "eval.metrics, with features=[eval])"]


@pytest.mark.parametrize("spec,dist", [
    ({"type": "categorical", "choices": [1, 2]}, Dist("categorical", choices=(1, 2))),
    ({"type": "int", "low": 1, "high": 8}, Dist("int", 1, 8, 1)),
    ({"type": "int", "low": 2, "high": 8, "step": 2}, Dist("int", 2, 8, 2)),
    ({"type": "int", "low": 1, "high": 64, "log": True}, Dist("int", 1, 64, None, True)),
    ({"type": "float", "low": 0.0, "high": 1.0}, Dist("float", 0.0, 1.0)),
    ({"type": "float", "low": 0.0, "high": 1.0, "step": 0.25}, Dist("float", 0.0, 1.0, 0.25)),
    ({"type": "DistributionType.float", "low": 1e-5, "high": 1e-3, "log": True}, Dist("float", 1e-5, 1e-3, None, True)),
])
def test_the_deprecated_search_space_reads_as_hydra_optuna_sweeper_reads_it(spec, dist):
    assert legacy_dist(spec) == dist


def test_an_unknown_search_space_type_is_named():
    with pytest.raises(SweepSpecError, match="hydra.sweeper.search_space: unknown type 'normal'"):
        legacy_dist({"type": "normal", "low": 0, "high": 1})


def test_a_reversed_interval_and_fractions_for_a_whole_number_are_refused_before_any_trial():
    space = """sweep.params='{"lr": {"type": "loguniform", "low": 1e-3, "high": 1e-5}}'"""
    assert messages(check("features=[sweep]", space), "error") == [
        "sweep.params: training.lr=tag(log, interval(0.001, 1e-05)): the interval's low end 0.001 is above its high "
        "end 1e-05"]
    assert messages(check("features=[sweep]", "training.lr=interval(1e-3,1e-5)"), "error") == [
        "training.lr=interval(1e-3,1e-5): the interval's low end 0.001 is above its high end 1e-05"]
    (err,) = check("features=[sweep]", 'sweep.params={training.batch_size:"interval(1.5,4.5)"}').errors
    assert err.message == ("training.batch_size takes whole numbers; the sweep training.batch_size=interval(1.5,4.5) "
                           "gives it fractions")
    assert not check("features=[sweep]", 'sweep.params={training.batch_size:"int(interval(2,8))"}').errors
