"""Generic and SFT train for real on the tiny model and the sample data, save, reload and generate.

One pytest process: transformers/trl are imported once for the whole suite.
"""

import json
import os

import pytest
import torch

from autotrain_hydra import models
from autotrain_hydra.run import run
from autotrain_hydra.schema.compose import compose_config
from autotrain_hydra.schema.errors import ConfigError

FAST = ["training.epochs=4", "training.batch_size=8", "training.logging_steps=2", "training.warmup_ratio=0"]


def train(tmp_path, *overrides):
    out = tmp_path / "out"
    cfg = compose_config([*FAST, f"output_dir={out}", *overrides])
    objective = run(cfg, overrides=list(overrides))
    metrics = json.loads((out / "metrics.json").read_text())
    return out, metrics, objective


def base_state():
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(models.tiny_model_dir()).state_dict()


def assert_changed(model):
    base = base_state()
    changed = [k for k, v in model.state_dict().items() if k in base and not torch.equal(v, base[k])]
    assert changed, "training changed no weight"


def generate(model, tok, prompt="What is 2 plus 3?"):
    ids = tok(prompt, return_tensors="pt")
    out = model.generate(**ids, max_new_tokens=8, do_sample=False, pad_token_id=tok.pad_token_id)
    assert out.shape[1] > ids["input_ids"].shape[1]
    return tok.decode(out[0, ids["input_ids"].shape[1]:])


@pytest.mark.parametrize("trainer,block", [("generic", "training.block_size=64"), ("sft", "trainer.max_seq_length=128")])
def test_full_finetune_learns_saves_reloads_generates(tmp_path, trainer, block):
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM

    out, metrics, objective = train(tmp_path, f"trainer={trainer}", block)
    # the loss falls measurably
    assert metrics["train_loss"] < metrics["first_train_loss"] - 0.5, metrics
    # eval data (the sample's validation file) → the objective is the eval loss
    assert metrics["objective_name"] == "eval_loss" and objective == pytest.approx(metrics["eval_loss"])
    for name in ("config.json", "model.safetensors", "tokenizer.json", "config.yaml", "README.md", "loss.png"):
        assert (out / name).is_file(), name
    model = AutoModelForCausalLM.from_pretrained(out)
    assert isinstance(model, LlamaForCausalLM)
    assert_changed(model)
    generate(model, AutoTokenizer.from_pretrained(out))


def test_lora_saves_adapter_and_merged_weights(tmp_path):
    from peft import AutoPeftModelForCausalLM, PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out, metrics, _ = train(tmp_path, "trainer=sft", "peft=lora", "peft.lora_r=8", "peft.merge_adapter=true",
                            "training.lr=5e-3")
    assert (out / "adapter_config.json").is_file() and not (out / "model.safetensors").exists()
    assert json.loads((out / "adapter_config.json").read_text())["r"] == 8
    assert metrics["train_loss"] < metrics["first_train_loss"]
    adapted = AutoPeftModelForCausalLM.from_pretrained(out)
    assert isinstance(adapted, PeftModel)
    merged = AutoModelForCausalLM.from_pretrained(out / "merged")
    assert_changed(merged)
    generate(merged, AutoTokenizer.from_pretrained(out / "merged"))


def test_sft_with_named_template_and_eos_on_plain_text(tmp_path):
    from datasets import Dataset

    from autotrain_hydra.data import sft_sequences

    tok = models.load_tokenizer(compose_config([]).model, "zephyr")
    assert "<|assistant|>" in tok.apply_chat_template([{"role": "assistant", "content": "hi"}], tokenize=False)
    ds = Dataset.from_list([{"text": "hello world"}])
    with_eos = sft_sequences(ds, tok, "text", True, "x")[0]["input_ids"]
    without = sft_sequences(ds, tok, "text", False, "x")[0]["input_ids"]
    assert with_eos[-1] == tok.eos_token_id and without[-1] != tok.eos_token_id and with_eos[:-1] == without


def test_generic_without_eval_data_returns_final_train_loss(tmp_path):
    out, metrics, objective = train(tmp_path, "trainer=generic", "data=text", "data.valid_path=null",
                                    "training.block_size=64", "training.max_steps=6")
    assert metrics["global_step"] == 6 and metrics["objective_name"] == "train_loss"
    assert objective == pytest.approx(metrics["train_loss"])


def test_own_data_with_missing_column_names_it(tmp_path):
    from autotrain_hydra.data import DataError

    f = tmp_path / "d.jsonl"
    f.write_text('{"body": "some text"}\n{"body": "more text"}\n')
    with pytest.raises(DataError, match=r"column 'text' \(data.text_column\) not found in .*d.jsonl; columns there: body"):
        train(tmp_path, "trainer=generic", f"data.path={f}")


def test_malformed_jsonl_names_line(tmp_path):
    from autotrain_hydra.data import DataError

    f = tmp_path / "d.jsonl"
    f.write_text('{"text": "ok"}\n{"text": broken\n')
    with pytest.raises(DataError, match=r"d.jsonl line 2 is not valid JSON"):
        train(tmp_path, "trainer=generic", f"data.path={f}")


def test_fp16_on_cpu_is_refused_before_loading(tmp_path, monkeypatch):
    from autotrain_hydra.trainers.common import HardwareError

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    monkeypatch.setattr(models, "load_causal_lm", lambda *a, **k: pytest.fail("model loaded"))
    with pytest.raises(HardwareError, match="training.mixed_precision=fp16 needs a CUDA GPU"):
        train(tmp_path, "training.mixed_precision=fp16")


def test_validate_only_loads_nothing(tmp_path, capsys):
    cfg = compose_config(["trainer=orpo", "validate_only=true", f"output_dir={tmp_path}/o"])
    assert run(cfg) is None
    assert "configuration is valid: trainer=orpo" in capsys.readouterr().out
    assert not (tmp_path / "o").exists()


def test_tiny_model_is_cached_and_loads_as_scorer():
    from transformers import LlamaForSequenceClassification

    first = models.tiny_model_dir()
    stamp = os.path.getmtime(first / "model.safetensors")
    assert models.tiny_model_dir() == first and os.path.getmtime(first / "model.safetensors") == stamp
    scorer = models.load_sequence_classifier(compose_config([]).model, num_labels=1)
    assert isinstance(scorer, LlamaForSequenceClassification) and scorer.config.pad_token_id is not None


def test_tiny_tokenizer_is_deterministic():
    a, b = models.build_tiny_tokenizer(), models.build_tiny_tokenizer()
    assert a.backend_tokenizer.to_str() == b.backend_tokenizer.to_str()
    assert a.pad_token and a.eos_token and a.chat_template


def test_hub_name_offline_is_a_clear_error():
    from autotrain_hydra.models import ModelLoadError

    cfg = compose_config(["model=llama2_7b"])
    with pytest.raises(ModelLoadError, match=r"cannot load the tokenizer of model.name=meta-llama/Llama-2-7b-hf"):
        models.load_tokenizer(cfg.model)


def test_local_saved_model_loads_by_path(tmp_path):
    from transformers import LlamaForCausalLM

    cfg = compose_config([f"model.name={models.tiny_model_dir()}"])
    assert isinstance(models.load_causal_lm(cfg.model), LlamaForCausalLM)


def test_run_dir_with_results_is_not_overwritten(tmp_path):
    run_dir = tmp_path / "run"
    (run_dir / ".hydra").mkdir(parents=True)
    (run_dir / "train.log").write_text("")
    cfg = compose_config([*FAST, "training.max_steps=1", "trainer=generic", "training.block_size=64"])
    run(cfg, run_dir=str(run_dir))  # Hydra's own files do not count
    assert (run_dir / "model.safetensors").is_file()
    stamp = (run_dir / "model.safetensors").stat().st_mtime_ns
    with pytest.raises(ConfigError, match="is not empty: a run never overwrites earlier results"):
        run(cfg, run_dir=str(run_dir))
    assert (run_dir / "model.safetensors").stat().st_mtime_ns == stamp
