"""Models: the offline tiny model (cached, deterministic), loading by local path, a hub name offline as a clear error."""

import os

import pytest

from autotrain_hydra import models
from autotrain_hydra.compat.hydra import compose_config
from tests.helpers import train_lm


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
    from autotrain_hydra.errors import ModelLoadError

    cfg = compose_config(["model=llama2_7b"])
    with pytest.raises(ModelLoadError, match=r"cannot load the tokenizer of model.name=meta-llama/Llama-2-7b-hf"):
        models.load_tokenizer(cfg.model)


def test_local_saved_model_loads_by_path(tmp_path):
    from transformers import LlamaForCausalLM

    cfg = compose_config([f"model.name={models.tiny_model_dir()}"])
    assert isinstance(models.load_causal_lm(cfg.model), LlamaForCausalLM)


@pytest.mark.slow
def test_trust_remote_code_off_and_safetensors(tmp_path):
    cfg = compose_config([])
    assert cfg.model.trust_remote_code is False
    out, _, _ = train_lm(tmp_path, "trainer=sft", "trainer.max_seq_length=64", "training.max_steps=2")
    assert (out / "model.safetensors").is_file()
    assert not list(out.rglob("pytorch_model*.bin"))  # weights: safetensors only


def test_lora_target_modules_the_model_lacks_are_named_with_its_layers():
    from autotrain_hydra.errors import InputError

    cfg = compose_config(["peft=lora", "peft.target_modules=[q_proj,nonexistent_proj]"])
    model = models.load_causal_lm(cfg.model)
    with pytest.raises(InputError, match=r"this model has no module named nonexistent_proj\n    fix: name some of its "
                                         r"linear layers \(down_proj, gate_proj, k_proj, lm_head, o_proj, q_proj"):
        models.lora_config(cfg.peft, model)
    assert models.lora_config(compose_config(["peft=lora", "peft.target_modules=[q_proj]"]).peft, model).r == 16
