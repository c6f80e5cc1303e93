"""DPO, ORPO and the reward model train for real on the tiny model and the shipped preference sample (the chosen
response answers the question, the rejected one evades it), in one process."""

import json

import pytest
import torch

from autotrain_hydra import data as data_mod
from autotrain_hydra import models
from autotrain_hydra.run import run
from autotrain_hydra.schema.compose import compose_config

FAST = ["training.logging_steps=4", "training.warmup_ratio=0"]


def train(tmp_path, *overrides):
    out = tmp_path / "out"
    objective = run(compose_config([*FAST, f"output_dir={out}", *overrides]), overrides=list(overrides))
    return out, json.loads((out / "metrics.json").read_text()), objective


@pytest.mark.parametrize("trainer,peft", [("dpo", "none"), ("dpo", "lora"), ("orpo", "none"), ("orpo", "lora")])
def test_policy_margin_on_held_out_pairs_grows(tmp_path, trainer, peft):
    from transformers import AutoModelForCausalLM, LlamaForCausalLM

    lr = ["training.lr=5e-3"] if peft == "lora" else []
    out, m, objective = train(tmp_path, f"trainer={trainer}", f"peft={peft}", *lr)
    assert m["eval_logp_margin_after"] > m["eval_logp_margin_before"] + 2.0, m
    assert m["train_loss"] < m["first_train_loss"] and objective == pytest.approx(m["eval_loss"])
    if peft == "lora":
        from peft import AutoPeftModelForCausalLM

        assert (out / "adapter_config.json").is_file()
        reloaded = AutoPeftModelForCausalLM.from_pretrained(out)
    else:
        reloaded = AutoModelForCausalLM.from_pretrained(out)
        assert isinstance(reloaded, LlamaForCausalLM)
    # the saved policy prefers the chosen answers as the trained one did
    tok = models.load_tokenizer(compose_config([]).model)
    cols = data_mod.PreferenceColumns("prompt", "chosen", "rejected")
    from datasets import Dataset

    from autotrain_hydra import paths
    from autotrain_hydra.trainers.preference import logp_margin

    valid = Dataset.from_json(paths.asset("data/preference_valid.jsonl"))
    pairs = data_mod.preference_sequences(valid, tok, cols, "valid").remove_columns(
        ["prompt_truncated", "completion_truncated"])
    assert logp_margin(reloaded, pairs, tok.pad_token_id) == pytest.approx(m["eval_logp_margin_after"], rel=1e-3)


def test_dpo_reference_model_choice(tmp_path):
    out, m, _ = train(tmp_path, "trainer=dpo", "peft=lora", f"trainer.model_ref={models.tiny_model_dir()}",
                      "training.lr=5e-3")  # the guide's "with reference model and LoRA" example
    assert m["notes"] == [f"reference model: {models.tiny_model_dir()}"]
    assert m["eval_logp_margin_after"] > m["eval_logp_margin_before"]


def spy_init(monkeypatch, cls):
    """Record the keyword arguments a class is constructed with."""
    seen = {}
    init = cls.__init__

    def spy(self, *a, **k):
        seen.update(k)
        init(self, *a, **k)

    monkeypatch.setattr(cls, "__init__", spy)
    return seen


def test_dpo_beta_reaches_trl(tmp_path, monkeypatch):
    from trl import DPOConfig

    seen = spy_init(monkeypatch, DPOConfig)
    train(tmp_path, "trainer=dpo", "trainer.dpo_beta=0.3", "training.max_steps=1")
    assert seen["beta"] == 0.3


def test_orpo_alpha_is_orpo_beta(tmp_path, monkeypatch):
    from trl.experimental.orpo import ORPOConfig

    seen = spy_init(monkeypatch, ORPOConfig)
    _, m, _ = train(tmp_path, "trainer=orpo", "trainer.orpo_alpha=0.5", "trainer.dpo_beta=0.3",
                    "training.max_steps=1")
    assert seen["beta"] == 0.5
    assert m["warnings"] == ["dpo_beta only applies to DPO trainer, will be ignored"]


def test_orpo_missing_from_trl_is_a_clear_error(monkeypatch):
    import builtins

    from autotrain_hydra.trainers import orpo

    real_import = builtins.__import__

    def fake(name, *a, **k):
        if name.startswith("trl.experimental.orpo"):
            raise ImportError("No module named 'trl.experimental.orpo'")
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", fake)
    with pytest.raises(orpo.ORPOUnavailable, match=r"trainer=orpo needs TRL's ORPOTrainer .* pip install trl==1.16.0"):
        orpo._orpo_classes()


@pytest.mark.parametrize("peft,labels", [("none", 1), ("lora", 1), ("none", 3)])
def test_reward_model_scores_held_out_pairs(tmp_path, peft, labels):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, LlamaForSequenceClassification

    lr = ["training.lr=5e-3"] if peft == "lora" else []
    out, m, _ = train(tmp_path, "trainer=reward", f"peft={peft}", f"trainer.num_labels={labels}", *lr)
    assert m["eval_accuracy"] >= 0.9, m
    assert m["eval_margin"] > 0
    scorer = AutoModelForSequenceClassification.from_pretrained(out)
    assert isinstance(scorer, LlamaForSequenceClassification) and scorer.config.num_labels == labels
    assert not scorer.can_generate()  # a scorer, not a generator
    tok = AutoTokenizer.from_pretrained(out)
    good = tok("Question: What is the capital of Peru?\nAnswer: The capital of Peru is Lima.</s>",
               return_tensors="pt")
    bad = tok("Question: What is the capital of Peru?\nAnswer: I do not know.</s>", return_tensors="pt")
    with torch.no_grad():
        assert scorer(**good).logits.shape == (1, labels)
        assert scorer(**good).logits.mean() > scorer(**bad).logits.mean()
    if peft == "lora":
        assert (out / "adapter" / "adapter_config.json").is_file()


def test_label_smoothing_formula():
    from autotrain_hydra.trainers.reward import pairwise_loss

    chosen, rejected = torch.tensor([[2.0], [0.5]]), torch.tensor([[1.0], [0.0]])
    d = chosen - rejected
    for eps in (0.0, 0.1, 0.3):
        expected = (-(1 - eps) * torch.nn.functional.logsigmoid(d) - eps * torch.nn.functional.logsigmoid(-d)).mean()
        assert pairwise_loss(chosen, rejected, eps) == pytest.approx(expected.item())
    assert pairwise_loss(chosen, rejected, 0.1) != pytest.approx(pairwise_loss(chosen, rejected, 0.0).item())
    # several heads: the mean of each head's loss
    two = pairwise_loss(torch.tensor([[2.0, 0.0]]), torch.tensor([[1.0, 1.0]]))
    per_head = -torch.nn.functional.logsigmoid(torch.tensor([1.0, -1.0]))
    assert two == pytest.approx(per_head.mean().item())


def test_label_smoothing_changes_training_loss(tmp_path):
    _, plain, _ = train(tmp_path / "a", "trainer=reward", "training.max_steps=3")
    _, smooth, _ = train(tmp_path / "b", "trainer=reward", "training.max_steps=3", "trainer.label_smoothing=0.2")
    assert smooth["first_train_loss"] != pytest.approx(plain["first_train_loss"], abs=1e-6)


def test_truncation_prompt_left_completion_right():
    tok = models.load_tokenizer(compose_config([]).model)
    from datasets import Dataset

    row = {"prompt": "Question: What is the capital of Norway?\nAnswer:", "chosen": " The capital of Norway is Oslo.",
           "rejected": " I do not know."}
    cols = data_mod.PreferenceColumns("prompt", "chosen", "rejected")
    full = data_mod.preference_sequences(Dataset.from_list([row]), tok, cols, "x")[0]
    cut = data_mod.preference_sequences(Dataset.from_list([row]), tok, cols, "x", max_prompt_length=4,
                                        max_completion_length=3)[0]
    assert cut["prompt_ids"] == full["prompt_ids"][-4:]
    assert cut["chosen_ids"] == full["chosen_ids"][:3] and cut["rejected_ids"] == full["rejected_ids"][:3]
    assert cut["prompt_truncated"] and cut["completion_truncated"]
    assert not full["prompt_truncated"] and full["chosen_ids"][-1] == tok.eos_token_id


def test_truncation_is_counted_in_metrics(tmp_path):
    _, m, _ = train(tmp_path, "trainer=dpo", "trainer.max_prompt_length=4", "trainer.max_completion_length=3",
                    "training.max_steps=1")
    assert m["prompts_truncated"] == 96 and m["completions_truncated"] == 96
    assert any("from the left" in n for n in m["notes"])


def test_conversational_pairs_with_implicit_prompt(tmp_path):
    rows = []
    for q, a in (("What is 2 plus 2?", "2 plus 2 is 4."), ("What color is the sky?", "The sky is blue.")) * 8:
        user = {"role": "user", "content": q}
        rows.append({"chosen": [user, {"role": "assistant", "content": a}],
                     "rejected": [user, {"role": "assistant", "content": "I do not know."}]})
    f = tmp_path / "conv.jsonl"
    f.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    tok = models.load_tokenizer(compose_config([]).model)
    from datasets import Dataset

    enc = data_mod.preference_sequences(Dataset.from_list(rows[:1]), tok,
                                        data_mod.PreferenceColumns(None, "chosen", "rejected"), "x")[0]
    assert tok.decode(enc["prompt_ids"]).endswith("<|im_start|>assistant\n")
    assert tok.decode(enc["chosen_ids"]).startswith("2 plus 2 is 4.")
    _, m, _ = train(tmp_path, "trainer=reward", f"data.path={f}", "data.text_column=chosen",
                    "data.rejected_text_column=rejected", "training.max_steps=2")
    assert m["global_step"] == 2


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_preference_files_in_other_formats(tmp_path, fmt):
    from datasets import Dataset

    from autotrain_hydra import paths

    ds = Dataset.from_json(paths.asset("data/preference.jsonl")).select(range(16))
    f = tmp_path / f"prefs.{fmt}"
    getattr(ds, f"to_{fmt}")(str(f))
    _, m, _ = train(tmp_path, "trainer=dpo", f"data.path={f}", "data.prompt_text_column=prompt",
                    "data.text_column=chosen", "data.rejected_text_column=rejected", "training.max_steps=2")
    assert m["global_step"] == 2 and m["objective_name"] == "train_loss"


def test_missing_rejected_column_names_file_and_columns(tmp_path):
    f = tmp_path / "p.jsonl"
    f.write_text('{"prompt": "q", "chosen": "a", "worse": "b"}\n')
    with pytest.raises(data_mod.DataError, match=r"column 'rejected' \(data.rejected_text_column\) not found in "
                                                 r".*p.jsonl; columns there: prompt, chosen, worse"):
        train(tmp_path, "trainer=dpo", f"data.path={f}", "data.prompt_text_column=prompt",
              "data.text_column=chosen", "data.rejected_text_column=rejected")


# The guide's example commands of the DPO, ORPO and Reward sections, flag for flag, with the model swapped for
# model=tiny (and its learning rate: the examples' 5e-7 is for pretrained 7B models) and the data for the sample.
GUIDE_EXAMPLES = {
    "dpo_basic": ["trainer=dpo", "training.epochs=2", "training.batch_size=2", "data.prompt_text_column=prompt",
                  "data.rejected_text_column=rejected", "trainer.dpo_beta=0.1"],
    "dpo_ref_lora": ["trainer=dpo", "training.epochs=2", "training.batch_size=4", "data.prompt_text_column=prompt",
                     "data.rejected_text_column=rejected", "trainer.dpo_beta=0.2", "peft=lora", "peft.lora_r=32",
                     "REF", "training.lr=5e-3"],
    "orpo_basic": ["trainer=orpo", "training.epochs=2", "training.batch_size=2", "data.prompt_text_column=prompt",
                   "data.rejected_text_column=rejected"],
    "reward_basic": ["trainer=reward", "training.epochs=3", "training.batch_size=16",
                     "data.rejected_text_column=rejected"],
    "reward_lora": ["trainer=reward", "training.epochs=3", "training.batch_size=32", "data.rejected_text_column=rejected",
                    "peft=lora", "peft.lora_r=8", "training.lr=1e-2"],
}


@pytest.mark.parametrize("name", GUIDE_EXAMPLES)
def test_guide_examples_learn(tmp_path, name):
    from autotrain_hydra import paths

    data = [f"data.path={paths.asset('data/preference.jsonl')}",
            f"data.valid_path={paths.asset('data/preference_valid.jsonl')}", "data.text_column=chosen"]
    overrides = [o.replace("REF", f"trainer.model_ref={models.tiny_model_dir()}") for o in GUIDE_EXAMPLES[name]]
    _, m, _ = train(tmp_path, *overrides, *data)
    assert m["warnings"] == []
    if name.startswith("reward"):
        assert m["eval_accuracy"] >= 0.9, m
    else:
        assert m["eval_logp_margin_after"] > m["eval_logp_margin_before"] + 1.0, m
