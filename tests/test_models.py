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


def pickle_model(root, source=None):
    """A copy of the tiny model (or ``source``) whose weights are a pickle only (pytorch_model.bin): transformers 5
    saves safetensors whatever ``safe_serialization`` says, so the pickle is written with torch.save."""
    import shutil

    import torch
    from safetensors.torch import load_file

    source = str(source or models.tiny_model_dir())
    target = os.path.join(str(root), "pickled_" + os.path.basename(source))
    if not os.path.isdir(target):
        os.makedirs(target)
        for name in os.listdir(source):
            if not name.endswith(".safetensors"):
                shutil.copy(os.path.join(source, name), target)
        torch.save(load_file(os.path.join(source, "model.safetensors")), os.path.join(target, "pytorch_model.bin"))
    return target


def test_pickle_weights_are_refused_before_loading_unless_allowed(tmp_path, monkeypatch):
    """Safetensors only, loading included: a pickle-only folder is refused before from_pretrained is called; with
    model.allow_pickle_weights=true it loads (torch's weights_only loading); every load asks for safetensors."""
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    from autotrain_hydra.errors import InputError

    pickled = pickle_model(tmp_path)
    cfg = compose_config(["model=custom", f"model.name={pickled}"])
    real = AutoModelForCausalLM.from_pretrained.__func__
    seen = []

    def spy(cls, *a, **k):
        seen.append(k.get("use_safetensors"))
        return real(cls, *a, **k)

    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", classmethod(spy))
    with pytest.raises(InputError, match=r"model.name=.*pickled_.* holds pickle weights only \(pytorch_model.bin\)"):
        models.load_causal_lm(cfg.model)
    with pytest.raises(InputError, match="holds pickle weights only"):
        models.load_sequence_classifier(cfg.model)
    with pytest.raises(InputError, match="output_dir=.* holds pickle weights only"):
        models.load_saved_scorer(pickled, cfg.model)
    assert seen == []  # nothing was loaded
    models.load_causal_lm(compose_config([]).model)
    assert seen == [True]  # safetensors asked for
    allowed = compose_config(["model=custom", f"model.name={pickled}", "model.allow_pickle_weights=true"]).model
    model = models.load_causal_lm(allowed)
    reference = models.load_causal_lm(compose_config([]).model)
    assert torch.equal(model.lm_head.weight, reference.lm_head.weight)
    assert seen == [True, None, True]
    assert isinstance(models.load_sequence_classifier(allowed), AutoModelForSequenceClassification._model_mapping[
        type(model.config)])


def test_a_ppo_reward_model_with_pickle_weights_is_refused_at_load(tmp_path, tiny_scorer):
    import torch

    from autotrain_hydra.errors import InputError
    from autotrain_hydra.models import RewardScorer

    pickled = pickle_model(tmp_path, tiny_scorer)
    policy = models.load_tokenizer(compose_config([]).model)
    with pytest.raises(InputError, match=r"trainer.rl.reward_model_path=.* holds pickle weights only"):
        RewardScorer(pickled, policy, torch.device("cpu"), 64, compose_config([]).model)
    allowed = compose_config(["model.allow_pickle_weights=true"]).model
    assert RewardScorer(pickled, policy, torch.device("cpu"), 64, allowed).model.config.num_labels == 1

