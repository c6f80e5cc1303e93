"""trainer=grpo: out of the box it learns the sample's reward; on user data (other column names, chat prompts, a
reward function of one's own with the data's columns, a shipped one with arguments, a reward model, weights, LoRA)
every source is scored before and after; the settings reach TRL."""

import json

import pytest

from autotrain_hydra.compat.hydra import compose_config
from autotrain_hydra.run import run
from tests.helpers import assert_a_trained_causal_lm, spy_init


def grpo_run(tmp_path, *overrides):
    out = tmp_path / "out"
    run(compose_config(["trainer=grpo", f"output_dir={out}", *overrides]), overrides=["trainer=grpo", *overrides])
    return out, json.loads((out / "metrics.json").read_text())


@pytest.mark.slow
def test_out_of_the_box_the_mean_reward_on_held_out_prompts_rises(tmp_path):
    out, m = grpo_run(tmp_path, "training.epochs=2", "training.logging_steps=8")
    # the held-out prompts, 128 completions each time (same seed): the sample's reward rises
    assert m["eval_mean_reward_after"] > m["eval_mean_reward_before"] + 0.1, m
    assert m["eval_rewards/has_number_after"] == m["eval_mean_reward_after"]
    assert m["objective_name"] == "eval_mean_reward_after" and m["objective"] == m["eval_mean_reward_after"]
    assert m["objective_direction"] == "maximize"
    assert 0 <= m["mean_reward"] <= 1 and m["history"]["mean_reward"][0][0] == 1 and m["weights_changed"]
    assert "trainer.grpo.reward_funcs=[autotrain_hydra.rewards.has_number], the sample's" in m["config_notes"][0]
    samples = [json.loads(line) for line in (out / "completions.jsonl").read_text().splitlines()]
    assert len(samples) >= 128 and set(samples[0]) == {"prompt", "completion", "reward", "rewards"}
    assert set(samples[0]["rewards"]) == {"has_number"} and samples[0]["reward"] == samples[0]["rewards"]["has_number"]
    assert_a_trained_causal_lm(out)
    assert (out / "checkpoints").is_dir() and not (out / "checkpoints" / "README.md").exists()  # TRL's boilerplate


@pytest.mark.slow
def test_user_data_own_and_shipped_functions_a_reward_model_weights_and_lora(tmp_path, tiny_scorer):
    rows = [{"question": [{"role": "user", "content": f"What is {a} plus {b}?"}], "solution": str(a + b),
             "id": i} for i, (a, b) in enumerate([(1, 2), (3, 4), (5, 1), (2, 2), (6, 3), (7, 1), (4, 4), (8, 1)])]
    data = tmp_path / "math.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    seen = tmp_path / "seen.json"
    (tmp_path / "my_rewards.py").write_text(
        "import json\n"
        f"def uses_columns(prompts, completions, solution, id, **kwargs):\n"
        f"    json.dump({{'solution': solution[:2], 'id': id[:2], 'prompt': prompts[0],\n"
        f"               'completion_type': type(completions[0]).__name__}}, open({str(seen)!r}, 'w'))\n"
        "    return [float(len(c) < 20) for c in completions]\n")
    ref = "{_target_:autotrain_hydra.rewards.reference_match,_partial_:true,column:solution,mode:number}"
    out, m = grpo_run(tmp_path, f"data.path={data}", "data.prompt_text_column=question",
                      f"trainer.grpo.reward_funcs=[{tmp_path}/my_rewards.py:uses_columns,{ref}]",
                      f"trainer.grpo.reward_model_path={tiny_scorer}", "trainer.grpo.reward_weights=[1.0,2.0,0.5]",
                      "peft=lora", "training.max_steps=2", "training.batch_size=4", "trainer.grpo.num_generations=2",
                      "trainer.grpo.max_completion_length=6", "training.lr=1e-3")
    got = json.loads(seen.read_text())
    assert got["solution"][0] in {r["solution"] for r in rows} and got["completion_type"] == "str"
    assert got["prompt"].startswith("<|im_start|>user\nWhat is") and got["prompt"].endswith("assistant\n")
    for name in ("uses_columns", "reference_match", "reward_model"):
        for when in ("before", "after"):
            assert isinstance(m[f"eval_rewards/{name}_{when}"], float), (name, when, m)
    sample = json.loads((out / "completions.jsonl").read_text().splitlines()[0])
    r = sample["rewards"]
    assert sample["reward"] == pytest.approx(r["uses_columns"] + 2 * r["reference_match"] + 0.5 * r["reward_model"])
    assert (out / "adapter_config.json").is_file() and m["global_step"] == 2
    assert "rewards: uses_columns, reference_match, reward_model" in m["notes"]


@pytest.mark.slow
def test_the_grpo_settings_reach_trl(tmp_path, monkeypatch):
    from trl import GRPOConfig

    seen = spy_init(monkeypatch, GRPOConfig)
    grpo_run(tmp_path, "training.max_steps=1", "training.batch_size=4", "trainer.grpo.num_generations=2",
             "trainer.grpo.max_completion_length=3", "trainer.grpo.temperature=0.7", "trainer.grpo.beta=0.05",
             "trainer.grpo.epsilon=0.3", "trainer.grpo.loss_type=grpo", "trainer.grpo.num_iterations=2",
             "training.eval_strategy=no", "data.valid_path=null")
    assert {k: seen[k] for k in ("num_generations", "max_completion_length", "temperature", "beta", "epsilon",
                                 "loss_type", "num_iterations", "use_vllm", "reward_weights")} == dict(
        num_generations=2, max_completion_length=3, temperature=0.7, beta=0.05, epsilon=0.3, loss_type="grpo",
        num_iterations=2, use_vllm=False, reward_weights=[1.0])


def test_long_prompts_keep_their_end_within_the_block(tmp_path):
    from datasets import Dataset

    from autotrain_hydra import models
    from autotrain_hydra.trainers.common import Job
    from autotrain_hydra.trainers.grpo import prompt_rows

    cfg = compose_config(["trainer=grpo", "trainer.grpo.max_prompt_length=8", "trainer.grpo.max_completion_length=4",
                          "training.block_size=10"])
    job = Job(cfg=cfg, output_dir=str(tmp_path))
    tok = models.load_tokenizer(cfg.model)
    long = "Question: What is 5 plus 4? And then what is 8 plus 6?\nAnswer:"
    rows = prompt_rows(job, Dataset.from_list([{"q": long, "a": "9"}, {"q": "Hi", "a": "x"}]), "d", tok,
                       "data.prompt_text_column", "q")
    assert rows.column_names == ["a", "prompt"] and rows[1]["prompt"] == "Hi"
    ids = tok(rows[0]["prompt"], add_special_tokens=False)["input_ids"]
    assert len(ids) <= 6 and long.endswith(rows[0]["prompt"])  # block 10 - completion 4 = 6 < max_prompt_length 8
    assert "1 of 2 prompts of d were longer than 6 tokens" in job.notes[0]


def test_a_completion_no_source_scored_is_left_out_of_the_mean():
    from autotrain_hydra.trainers.grpo import _mean, score

    def half(prompts, completions, **kw):
        return [1.0, None, None]

    def none(prompts, completions, **kw):
        return [None, 2.0, None]

    per_source, totals = score([half, none], [1.0, 0.5], ["p"] * 3, ["a", "b", "c"], [[1]] * 3, {}, None)
    assert totals[:2] == [1.0, 1.0] and totals[2] != totals[2]  # nan
    assert _mean(totals) == 1.0 and list(per_source) == ["half", "none"]


@pytest.mark.parametrize("returns,what", [
    ("raise RuntimeError('boom')", "raised RuntimeError: boom"),
    ("raise SystemExit(0)", "raised SystemExit: 0"),
    ("return 1.0", "returned float 1.0, not a list of rewards"),
    ("return '1.0'", "returned str '1.0', not a list of rewards"),
    ("return [1.0]", "returned 1 reward for 2 completions"),
    ("return ['1', 2.0]", "returned str '1' as a reward"),
    ("return [float('inf'), 1.0]", "returned float inf as a reward (a finite number, or None)"),
    ("return [10 ** 400, 1.0]", "returned int 1000"),
    ("import numpy; return numpy.array(1.0)", "returned ndarray array(1.), not a list of rewards"),
])
def test_a_reward_function_that_misbehaves_mid_run_is_named(returns, what):
    from autotrain_hydra.errors import RunError
    from autotrain_hydra.trainers.grpo import Checked

    namespace = {}
    body = returns.replace("; ", "\n    ")
    exec(f"def f(prompts, completions, **kwargs):\n    {body}\n", namespace)
    checked = Checked(namespace["f"], "f", "./rw.py:f", 1)
    with pytest.raises(RunError) as e:
        checked(prompts=["p", "p"], completions=["a", "b"])
    assert str(e.value).startswith(f"the reward function trainer.grpo.reward_funcs[1]=./rw.py:f {what}")
    assert ("fix: fix the error in the function" if what.startswith("raised")
            else "fix: return one float (or None) per completion") in str(e.value)
    ok = Checked(lambda prompts, completions, **kw: [1, float("nan")], "g", "m.g", 0)
    assert ok(prompts=["p", "p"], completions=["a", "b"]) == [1.0, None]
