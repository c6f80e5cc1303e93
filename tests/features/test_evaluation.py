"""Enhanced evaluation: the metrics equal their libraries on fixed strings, and runs write every requested eval/*
metric."""

import json

import pytest

from autotrain_hydra import paths
from autotrain_hydra.compat.hydra import compose_config
from autotrain_hydra.features import evaluation
from autotrain_hydra.run import run

ALL = '["perplexity", "bleu", "rouge", "bertscore", "chrf", "exact_match"]'


def test_text_metrics_on_fixed_strings():
    import sacrebleu
    from rouge_score import rouge_scorer

    same = ["the capital of Peru is Lima.", "2 plus 2 is 4."]
    assert evaluation.bleu(same, same) == pytest.approx(100.0)
    assert evaluation.chrf(same, same) == pytest.approx(100.0)
    means, rows = evaluation.rouge(same, same)
    assert means == {"rouge1": 1.0, "rouge2": 1.0, "rougeL": 1.0, "rougeLsum": 1.0}
    assert evaluation.exact_match(same, same)[0] == 1.0
    preds, refs = ["the cat sat on a mat", "hello there"], ["the cat sat on the mat", "hello world"]
    assert evaluation.bleu(preds, refs) == pytest.approx(sacrebleu.corpus_bleu(preds, [refs]).score)
    scorer = rouge_scorer.RougeScorer(["rouge1"], use_stemmer=True)
    expected = sum(scorer.score(r, p)["rouge1"].fmeasure for p, r in zip(preds, refs)) / 2
    assert evaluation.rouge(preds, refs)[0]["rouge1"] == pytest.approx(expected)
    assert evaluation.exact_match(preds, refs)[0] == 0.0


def test_bertscore_offline_with_the_shipped_model():
    means, f1 = evaluation.bertscore(["the cat sat on the mat", "", "hello"],
                                     ["the cat sat on the mat", "something", "goodbye moon"], None, 8)
    assert f1[0] == pytest.approx(1.0, abs=1e-4) and f1[1] == 0.0 and 0 < f1[2] < 0.9
    assert means["f1"] == pytest.approx(sum(f1) / 3)


@pytest.mark.slow
def test_guide_sft_example_with_enhanced_eval(tmp_path):
    """The guide's SFT example with --use-enhanced-eval --eval-metrics '["bleu", "rouge", "bertscore"]'
    --eval-dataset-path, on the tiny model, offline, plus every other metric and the before/after table."""
    from autotrain_hydra import paths

    out = tmp_path / "out"
    cfg = compose_config(["trainer=sft", "peft=lora", "peft.lora_r=64", "training.epochs=3", "training.batch_size=8",
                          "training.lr=5e-3", "features=[eval]", f"eval.metrics='{ALL}'",
                          f"eval.dataset_path={paths.asset('data/chat_valid.jsonl')}", "eval.save_predictions=true",
                          "eval.before_training=true", "eval.max_new_tokens=12", f"output_dir={out}"])
    run(cfg)
    m = json.loads((out / "metrics.json").read_text())
    for key in ("perplexity", "bleu", "chrf", "rouge1", "rouge2", "rougeL", "rougeLsum", "bertscore_precision",
                "bertscore_recall", "bertscore_f1", "exact_match"):
        assert isinstance(m[f"eval/{key}"], float), key
        assert f"eval_before/{key}" in m
    assert m["eval/perplexity"] < m["eval_before/perplexity"]
    rows = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert len(rows) == 7 and set(rows[0]) == {"prompt", "reference", "prediction", "scores"}
    assert {"bleu", "rouge1", "bertscore_f1", "exact_match"} <= set(rows[0]["scores"])


@pytest.mark.slow
def test_generic_without_eval_data_holds_out_training_rows(tmp_path):
    out = tmp_path / "out"
    run(compose_config(["trainer=generic", "data=text", "data.valid_path=null", "features=[eval]",
                        "training.block_size=64", "training.max_steps=2", f"output_dir={out}"]))
    m = json.loads((out / "metrics.json").read_text())
    assert m["eval/perplexity"] > 1 and "eval_loss" in m  # the held-out slice is the validation data too


@pytest.mark.slow
def test_reward_trainer_reports_accuracy(tmp_path):
    out = tmp_path / "out"
    run(compose_config(["trainer=reward", "features=[eval]", f"output_dir={out}"]))
    m = json.loads((out / "metrics.json").read_text())
    assert m["eval/accuracy"] == m["eval_accuracy"] >= 0.9 and "eval/reward_margin" in m


@pytest.mark.slow
def test_ppo_reports_mean_reward(tmp_path):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from autotrain_hydra.models import tiny_model_dir

    scorer = tmp_path / "scorer"
    AutoModelForSequenceClassification.from_pretrained(tiny_model_dir(), num_labels=1).save_pretrained(scorer)
    AutoTokenizer.from_pretrained(tiny_model_dir()).save_pretrained(scorer)
    out = tmp_path / "out"
    run(compose_config(["trainer=ppo", f"trainer.rl.reward_model_path={scorer}", "features=[eval]",
                        "training.max_steps=1", "trainer.rl.chunk_size=8", "trainer.rl.max_new_tokens=4",
                        f"output_dir={out}"]))
    m = json.loads((out / "metrics.json").read_text())
    assert m["eval/mean_reward"] == pytest.approx(m["eval_mean_reward_after"])


@pytest.mark.slow
def test_reward_metrics_are_computed_on_the_eval_dataset(tmp_path, caplog):
    """Bug: trainer=reward features=[eval] eval.metrics=[accuracy] eval.dataset_path=<pairs> exited 0 with no
    evaluation metric in metrics.json."""
    import logging

    caplog.set_level(logging.INFO)
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("\n".join((paths.ASSETS_DIR / "data" / "preference.jsonl").read_text().splitlines()[:5]) + "\n")
    out = tmp_path / "out"
    run(compose_config(["trainer=reward", "features=[eval]", "eval.metrics=[accuracy]", f"eval.dataset_path={pairs}",
                        "training.max_steps=4", f"output_dir={out}"]))
    m = json.loads((out / "metrics.json").read_text())
    assert 0 <= m["eval/accuracy"] <= 1 and "eval/reward_margin" not in m
    assert f"on 5 pairs from {pairs}" in caplog.text


def test_a_requested_metric_that_was_not_computed_is_named():
    from autotrain_hydra.features.evaluation import missing

    cfg = compose_config(["trainer=reward", "features=[eval]"])
    assert missing(cfg, {"eval/accuracy": 1.0}) == ["reward_margin"]
    assert missing(compose_config(["features=[eval]", "eval.metrics=[rouge]"]), {"eval/rouge1": 0.1}) == ["rouge"]



def test_an_answer_alone_in_messages_takes_its_prompt_from_the_prompt_column():
    """Bug: kto (or dpo) data whose completion is one assistant message, the prompt in its own column, crashed the
    enhanced evaluation after training (a chat template applied to an empty conversation)."""
    from datasets import Dataset

    from autotrain_hydra import models
    from autotrain_hydra.compat.hydra import compose_config
    from autotrain_hydra.features.evaluation import examples

    cfg = compose_config(["trainer=kto", "data.prompt_text_column=prompt", "data.text_column=completion"])
    tok = models.load_tokenizer(cfg.model)
    chat = Dataset.from_list([{"prompt": [{"role": "user", "content": "2+2?"}],
                               "completion": [{"role": "assistant", "content": "4"}]}])
    text = Dataset.from_list([{"prompt": "3+3?", "completion": [{"role": "assistant", "content": "6"}]}])
    got = examples(chat, cfg, tok) + examples(text, cfg, tok)
    assert [g["reference"] for g in got] == ["4", "6"]
    assert "2+2?" in got[0]["prompt"] and "3+3?" in got[1]["prompt"] and got[1]["prompt"].endswith("assistant\n")
