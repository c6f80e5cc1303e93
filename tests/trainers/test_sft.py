"""trainer=sft trains for real on the tiny model and the sample chat data, saves, reloads and generates; LoRA saves the
adapter and merged weights."""

import json

import pytest
import torch

from autotrain_hydra import models
from autotrain_hydra.compat.hydra import compose_config
from tests.helpers import train_lm as train


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


@pytest.mark.slow
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


@pytest.mark.slow
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

