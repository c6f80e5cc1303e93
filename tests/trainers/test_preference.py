"""What dpo, orpo and reward share (the shipped preference sample: the chosen response answers the question, the
rejected one evades it): the held-out margin grows, truncation, conversational pairs, other file formats, the
guide's examples."""

import json

import pytest

from autotrain_hydra import data as data_mod
from autotrain_hydra import models
from autotrain_hydra.compat.hydra import compose_config
from tests.helpers import train_pairs as train

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



@pytest.mark.slow
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


@pytest.mark.slow
def test_truncation_is_counted_in_metrics(tmp_path):
    _, m, _ = train(tmp_path, "trainer=dpo", "trainer.max_prompt_length=4", "trainer.max_completion_length=3",
                    "training.max_steps=1")
    assert m["prompts_truncated"] == 96 and m["completions_truncated"] == 96
    assert any("from the left" in n for n in m["notes"])


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
def test_missing_rejected_column_names_file_and_columns(tmp_path):
    f = tmp_path / "p.jsonl"
    f.write_text('{"prompt": "q", "chosen": "a", "worse": "b"}\n')
    with pytest.raises(data_mod.DataError, match=r"column 'rejected' \(data.rejected_text_column\) not found in "
                                                 r".*p.jsonl; columns there: prompt, chosen, worse"):
        train(tmp_path, "trainer=dpo", f"data.path={f}", "data.prompt_text_column=prompt",
              "data.text_column=chosen", "data.rejected_text_column=rejected")


@pytest.mark.slow
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

