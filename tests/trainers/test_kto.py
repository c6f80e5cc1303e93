"""trainer=kto: out of the box (unpaired thumbs up/down) the held-out margin rises; preference pairs with other
column names become desirable/undesirable rows; the settings reach TRL."""

import json

import pytest

from autotrain_hydra.compat.hydra import compose_config
from autotrain_hydra.errors import DataError
from autotrain_hydra.trainers.common import Job
from tests.helpers import assert_a_trained_causal_lm, spy_init, train_pairs


@pytest.mark.slow
def test_out_of_the_box_the_margin_on_held_out_rows_rises(tmp_path):
    out, m, objective = train_pairs(tmp_path, "trainer=kto", "training.epochs=2")
    assert m["eval_logp_margin_after"] > m["eval_logp_margin_before"] + 5, m
    assert m["notes"][:2] == ["48 desirable and 48 undesirable training rows",
                              "reference model: a frozen copy of the base model"]
    assert m["objective_name"] == "eval_loss" and objective == m["eval_loss"] and m["weights_changed"]
    assert m["objective_direction"] == "minimize"
    assert_a_trained_causal_lm(out)


@pytest.mark.slow
def test_pairs_with_other_column_names_lora_and_the_settings_reach_trl(tmp_path, monkeypatch):
    from trl import KTOConfig

    rows = [json.loads(line) for line in open("autotrain_hydra/assets/data/preference.jsonl")][:24]
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps({"q": r["prompt"], "good": r["chosen"], "bad": r["rejected"]}) + "\n"
                            for r in rows))
    seen = spy_init(monkeypatch, KTOConfig)
    out, m, _ = train_pairs(tmp_path, "trainer=kto", f"data.path={data}", "data.prompt_text_column=q",
                            "data.text_column=good", "data.rejected_text_column=bad", "data.valid_fraction=0.25",
                            "peft=lora", "training.max_steps=3", "training.batch_size=4", "trainer.kto.beta=0.2",
                            "trainer.kto.desirable_weight=1.5", "trainer.kto.undesirable_weight=0.5")
    assert {k: seen[k] for k in ("beta", "desirable_weight", "undesirable_weight", "train_sampling_strategy")} == \
        dict(beta=0.2, desirable_weight=1.5, undesirable_weight=0.5, train_sampling_strategy="sequential")
    assert m["train_rows"] == 36 and "18 desirable and 18 undesirable training rows (from preference pairs)" in m["notes"]
    assert (out / "adapter_config.json").is_file() and m["global_step"] == 3
    assert "eval_logp_margin_after" in m and "reference model: the base model with the LoRA adapter disabled" in m["notes"]


def test_feedback_rows_unpaired_and_paired(tmp_path):
    from datasets import Dataset

    from autotrain_hydra.trainers.kto import feedback_rows

    job = Job(cfg=compose_config(["trainer=kto", "data.prompt_text_column=p", "data.text_column=c",
                                  "data.label_column=ok"]), output_dir=str(tmp_path))
    ds = Dataset.from_list([{"p": "x", "c": "y", "ok": False}])
    assert feedback_rows(job, ds, "d") == [{"prompt": "x", "completion": "y", "label": False}]
    with pytest.raises(DataError, match=r"data.label_column \('ok'\) of d holds str 'no', not a boolean"):
        feedback_rows(job, Dataset.from_list([{"p": "x", "c": "y", "ok": "no"}]), "d")
    with pytest.raises(DataError, match=r"column 'ok' \(data.label_column\) not found in d; columns there: p, c"):
        feedback_rows(job, Dataset.from_list([{"p": "x", "c": "y"}]), "d")
    job = Job(cfg=compose_config(["trainer=kto", "data.prompt_text_column=p", "data.text_column=c",
                                  "data.rejected_text_column=r"]), output_dir=str(tmp_path))
    assert feedback_rows(job, Dataset.from_list([{"p": "x", "c": "good", "r": "bad"}]), "d") == [
        {"prompt": "x", "completion": "good", "label": True}, {"prompt": "x", "completion": "bad", "label": False}]


def test_one_feedback_row_is_refused_before_load(tmp_path):
    from autotrain_hydra.trainers.kto import load_feedback

    data = tmp_path / "one.jsonl"
    data.write_text(json.dumps({"prompt": "p", "completion": "c", "label": True}) + "\n")
    job = Job(cfg=compose_config(["trainer=kto", f"data.path={data}", "data.prompt_text_column=prompt",
                                  "data.text_column=completion"]),
              output_dir=str(tmp_path))
    with pytest.raises(DataError, match="holds 1 feedback row: KTO estimates its KL term"):
        load_feedback(job)
