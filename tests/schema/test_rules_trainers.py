"""Rules of one trainer's own settings (schema/rules/trainers.py): GRPO's reward sources and generation groups,
vLLM, KTO's batches and labels; each an exact error before anything loads."""

import json
import tempfile
from pathlib import Path

import pytest

from autotrain_hydra.data import check_inputs
from autotrain_hydra.errors import DataError
from tests.helpers import check, fake_reward_dir, messages, resolved

OWN = Path(tempfile.mkdtemp()) / "my_prompts.jsonl"  # the sample's prompts, as the user's own file
OWN.write_text((Path(__file__).resolve().parents[2] / "autotrain_hydra/assets/data/prompts.jsonl").read_text())
PROMPTS = f"data.path={OWN}"
SHORT = "trainer.grpo.max_completion_length=16"  # fits the tiny model's block of 128 (the sample sets it itself)


def errors(*overrides):
    report = check(*overrides)
    return [(i.key, i.message, i.fix) for i in report.errors]


def test_grpo_needs_a_reward_source_and_the_sample_brings_its_own():
    [(key, message, fix)] = errors("trainer=grpo", PROMPTS, SHORT)
    assert key == "trainer.grpo.reward_funcs"
    assert message == "grpo requires a reward: trainer.grpo.reward_funcs or trainer.grpo.reward_model_path"
    assert "autotrain_hydra.rewards" in fix and "trainer=reward" in fix
    cfg = resolved("trainer=grpo")  # the built-in prompts: their reward, said in the notes
    assert list(cfg.trainer.grpo.reward_funcs) == ["autotrain_hydra.rewards.has_number"]
    assert not check("trainer=grpo").errors
    # a reward model alone is a reward source; the sample's reward is not added beside a source the user chose
    cfg = resolved("trainer=grpo", f"trainer.grpo.reward_model_path={fake_reward_dir()}")
    assert list(cfg.trainer.grpo.reward_funcs) == [] and cfg.trainer.grpo.max_completion_length == 16
    assert not errors("trainer=grpo", PROMPTS, SHORT, f"trainer.grpo.reward_model_path={fake_reward_dir()}")


def test_a_reward_model_that_is_not_one_is_refused(tmp_path):
    [(key, message, _)] = errors("trainer=grpo", f"trainer.grpo.reward_model_path={tmp_path}")
    assert key == "trainer.grpo.reward_model_path" and message.startswith(f"Reward model not found: {tmp_path}")


def test_a_reward_function_is_checked_before_load(tmp_path):
    (tmp_path / "r.py").write_text("def f(x):\n    return [0.0]\n")
    [(key, message, fix)] = errors("trainer=grpo", f"trainer.grpo.reward_funcs=[{tmp_path}/r.py:f]")
    assert key == "trainer.grpo.reward_funcs[0]" and "its signature f(x) cannot take what GRPO passes" in message
    [(key, message, _)] = errors("trainer=grpo", "trainer.grpo.reward_funcs=[my.missing.func]")
    assert message == "my.missing.func does not import: ModuleNotFoundError: No module named 'my'"


def test_reference_match_needs_its_column_in_the_data(tmp_path):
    data = tmp_path / "q.jsonl"
    data.write_text(json.dumps({"question": "2+2?", "solution": "4"}) + "\n")
    ref = "{_target_:autotrain_hydra.rewards.reference_match,_partial_:true,column:solution}"
    base = ["trainer=grpo", f"data.path={data}", "data.prompt_text_column=question", SHORT]
    assert not errors(*base, f"trainer.grpo.reward_funcs=[{ref}]")
    [(_, message, _)] = errors(*base, f"trainer.grpo.reward_funcs=[{ref.replace('solution', 'answer')}]")
    assert "it reads the column 'answer', which the data lack (their columns beside the prompt: solution)" in message


def test_reward_weights_one_per_source():
    [(key, message, fix)] = errors("trainer=grpo", "trainer.grpo.reward_weights=[1.0,2.0]")
    assert (key, message) == ("trainer.grpo.reward_weights",
                              "trainer.grpo.reward_weights has 2 weights for 1 reward source (has_number)")
    assert fix == "give 1 weight, in that order (the reward functions, then the reward model)"
    assert not errors("trainer=grpo", f"trainer.grpo.reward_model_path={fake_reward_dir()}",
                      "trainer.grpo.reward_funcs=[autotrain_hydra.rewards.has_number]",
                      "trainer.grpo.reward_weights=[1.0,0.5]")


def test_the_generation_count_divides_the_effective_batch():
    [(key, message, fix)] = errors("trainer=grpo", "trainer.grpo.num_generations=3")
    assert key == "trainer.grpo.num_generations"
    assert message == ("trainer.grpo.num_generations=3 must divide the effective batch (training.batch_size=8 × "
                       "training.gradient_accumulation=1 = 8): each step scores whole groups of 3 completions of one "
                       "prompt")
    assert fix.startswith("set trainer.grpo.num_generations to a divisor of 8 (2, 4, 8), or training.batch_size to 24")
    assert not errors("trainer=grpo", "trainer.grpo.num_generations=3", "training.batch_size=4",
                      "training.gradient_accumulation=3", "training.eval_batch_size=6")
    # several processes: the effective batch counts them
    [(_, message, _)] = errors("trainer=grpo", "trainer.grpo.num_generations=16", "launcher=multiprocess",
                               "launcher.num_processes=3")
    assert "× 3 processes = 24" in message
    assert not errors("trainer=grpo", "trainer.grpo.num_generations=16", "launcher=multiprocess",
                      "launcher.num_processes=2")


def test_the_periodic_evaluation_generates_whole_groups_too():
    [(key, message, fix)] = errors("trainer=grpo", "training.eval_batch_size=6")
    assert key == "training.eval_batch_size" and "must divide the eval batch (training.eval_batch_size=6)" in message
    assert not errors("trainer=grpo", "training.eval_batch_size=6", "training.eval_strategy=no")


def test_vllm_is_refused_where_it_cannot_run():
    [(key, message, fix)] = errors("trainer=grpo", "trainer.grpo.use_vllm=true")
    assert key == "trainer.grpo.use_vllm" and "needs the vllm package (and a CUDA GPU)" in message


def test_grpo_keys_keep_the_guide_s_ppo_wording_and_are_warned_elsewhere():
    report = check("trainer=grpo", "trainer.rl.kl_coef=0.1", "trainer.dpo_beta=0.2")
    assert messages(report, "warning") == ["dpo_beta only applies to DPO trainer, will be ignored",
                                           "rl_kl_coef only applies to PPO trainer, will be ignored"]
    report = check("trainer=sft", "trainer.grpo.beta=0.1", "trainer.kto.beta=0.2")
    assert messages(report, "warning") == ["grpo_beta only applies to GRPO trainer, will be ignored",
                                           "kto_beta only applies to KTO trainer, will be ignored"]
    # a guide flag kto reads too keeps the guide's words; the fix names every trainer
    [warning] = check("trainer=sft", "trainer.model_ref=m").warnings
    assert warning.message == "model_ref only applies to DPO/ORPO trainers, will be ignored"
    assert warning.fix == "remove it, or use trainer=dpo / trainer=orpo / trainer=kto"


def test_distillation_is_refused_with_grpo_and_kto():
    for trainer, label in (("grpo", "GRPO"), ("kto", "KTO")):
        report = check(f"trainer={trainer}", "features=[distillation]", "distillation.teacher_model=tiny")
        assert messages(report, "error") == [f"Distillation is not supported with {label} trainer"]


def test_kto_needs_two_rows_per_batch():
    [(key, message, fix)] = errors("trainer=kto", "training.batch_size=1")
    assert key == "training.batch_size" and message.startswith("trainer=kto needs training.batch_size >= 2")


def test_kto_labels_must_be_booleans_found_before_load(tmp_path):
    data = tmp_path / "fb.jsonl"
    rows = [{"prompt": "p", "completion": "c", "label": True}, {"prompt": "p", "completion": "c", "label": "yes"},
            {"prompt": "p", "completion": "c", "label": 1}, {"prompt": "p", "completion": "c"}]
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    cfg = resolved("trainer=kto", f"data.path={data}")
    assert cfg.data.text_column == "completion" and cfg.data.label_column == "label"
    with pytest.raises(DataError) as e:
        check_inputs(cfg)
    text = str(e.value)
    assert f"{data}:2: data.label_column ('label') is text, not a boolean (e.g. \"yes\")" in text
    assert f"{data}:3: data.label_column ('label') is a number, not a boolean (e.g. 1)" in text
    assert f"{data}:4: data.label_column ('label') is missing" in text
    assert "fix: every row needs true (desirable) or false (undesirable) in 'label' (data.label_column)" in text
    assert "text or a list" not in text


def test_kto_on_pairs_reads_the_rejected_column_not_a_label(tmp_path):
    data = tmp_path / "pairs.jsonl"
    data.write_text(json.dumps({"q": "p", "good": "a", "bad": "b"}) + "\n")
    cfg = resolved("trainer=kto", f"data.path={data}", "data.prompt_text_column=q", "data.text_column=good",
                   "data.rejected_text_column=bad")
    assert check_inputs(cfg) == []
    assert not check("trainer=kto", f"data.path={data}", "data.prompt_text_column=q", "data.text_column=good",
                     "data.rejected_text_column=bad").errors


def test_a_completion_as_long_as_the_block_leaves_the_prompt_no_room(tmp_path):
    [(key, message, fix)] = errors("trainer=grpo", PROMPTS, "trainer.grpo.reward_funcs=[autotrain_hydra.rewards."
                                   "has_number]")  # the tiny preset's block of 128, the default completion of 256
    assert key == "trainer.grpo.max_completion_length"
    assert message == ("trainer.grpo.max_completion_length=256 leaves no room for the prompt in "
                       "training.block_size=128 (prompt + completion)")
    assert not errors("trainer=grpo", PROMPTS, "trainer.grpo.reward_funcs=[autotrain_hydra.rewards.has_number]",
                      "trainer.grpo.max_completion_length=64")


def test_the_eval_batch_rule_needs_eval_data(tmp_path):
    base = ["trainer=grpo", PROMPTS, "trainer.grpo.reward_funcs=[autotrain_hydra.rewards.has_number]",
            "trainer.grpo.max_completion_length=16", "training.batch_size=2", "training.gradient_accumulation=2"]
    assert not errors(*base)  # no eval data: TRL never evaluates, whatever the eval batch
    [(key, _, _)] = errors(*base, "data.valid_path=autotrain_hydra/assets/data/prompts_valid.jsonl")
    assert key == "training.eval_batch_size"


def test_a_reward_column_must_be_in_every_data_set_the_rewards_score(tmp_path):
    train, valid = tmp_path / "t.jsonl", tmp_path / "v.jsonl"
    train.write_text(json.dumps({"q": "2+2?", "answer": "4"}) + "\n")
    valid.write_text(json.dumps({"q": "3+3?"}) + "\n")
    ref = "{_target_:autotrain_hydra.rewards.reference_match,_partial_:true}"
    [(_, message, _)] = errors("trainer=grpo", f"data.path={train}", f"data.valid_path={valid}", SHORT,
                               "data.prompt_text_column=q", f"trainer.grpo.reward_funcs=[{ref}]")
    assert "it reads the column 'answer', which the data lack" in message


def test_csv_labels_as_pandas_reads_them(tmp_path):
    data = tmp_path / "fb.csv"
    data.write_text("prompt,completion,label\np,c,True\np,d,false\np,e,yes\n")
    cfg = resolved("trainer=kto", f"data.path={data}")
    with pytest.raises(DataError) as e:
        check_inputs(cfg)
    assert f"{data}:4: data.label_column ('label') is text, not a boolean" in str(e.value)
    assert ":2:" not in str(e.value) and ":3:" not in str(e.value)


def test_a_data_column_named_as_a_grpo_argument_is_refused(tmp_path):
    data = tmp_path / "d.jsonl"
    data.write_text(json.dumps({"prompt": "p", "completions": "x"}) + "\n")
    [(key, message, fix)] = errors("trainer=grpo", f"data.path={data}", SHORT,
                                   "trainer.grpo.reward_funcs=[autotrain_hydra.rewards.has_number]")
    assert key == "data.path" and message.startswith("the data have a column named 'completions'")


def test_a_reward_funcs_interpolation_of_the_whole_list_is_refused(monkeypatch):
    monkeypatch.setenv("RWF", "autotrain_hydra.rewards.has_number")
    [(key, message, fix)] = errors("trainer=grpo", "trainer.grpo.reward_funcs=${oc.env:RWF}")
    assert key == "trainer.grpo.reward_funcs" and "must be a list, and it is str" in message
    assert not errors("trainer=grpo", "trainer.grpo.reward_funcs=[${oc.env:RWF}]")


def test_one_process_per_gpu_leaves_the_group_check_to_where_it_runs():
    assert not errors("trainer=grpo", "trainer.grpo.num_generations=4", "training.batch_size=6",
                      "training.eval_batch_size=8", "launcher=multiprocess", "launcher.num_processes=null")


def test_kto_eval_batches_of_two_and_a_label_column_beside_pairs_is_said():
    [(key, _, _)] = errors("trainer=kto", "training.eval_batch_size=1")
    assert key == "training.eval_batch_size"
    report = check("trainer=kto", "data=preference", "data.label_column=liked")
    assert messages(report, "warning") == [
        "label_column is not read when data.rejected_text_column is set (preference pairs: chosen is desirable, "
        "rejected undesirable), will be ignored"]


def test_the_sample_chosen_by_name_brings_its_reward_too():
    cfg = resolved("trainer=grpo", "data=prompts")
    assert list(cfg.trainer.grpo.reward_funcs) == ["autotrain_hydra.rewards.has_number"]
    assert list(resolved("trainer=grpo", "data=chat").trainer.grpo.reward_funcs) == []  # not its sample


def test_all_zero_weights_are_said():
    report = check("trainer=grpo", "trainer.grpo.reward_weights=[0.0]")
    assert messages(report, "warning") == ["trainer.grpo.reward_weights are all 0: every completion gets the reward "
                                           "0, and GRPO learns nothing"]
