"""peft=qlora: LoRA on the base loaded in 4-bit (or 8-bit) through bitsandbytes' CPU backend, for real on the tiny
model: it learns (sft, dpo), the adapter trains in full precision, reloads on the full-precision base with the
4-bit model's logits (within the rounding of nf4), merges into a full-precision reload, and every trainer takes it;
the rules refuse what it cannot run before anything loads."""

import json

import pytest

from autotrain_hydra import generate, models
from autotrain_hydra.cli import translate
from autotrain_hydra.trainers.common import precision_used
from tests.helpers import check, compose, messages, train_in, train_lm, train_pairs

# nf4 rounds the base's weights: the 4-bit model and the adapter on the full-precision base differ by that rounding
# alone. Measured on the tiny model after this training: KL 0.0002 per token. Stated bound: KL below 0.01.
KL_4BIT = 0.01


def logits(model, ids):
    import torch

    with torch.no_grad():
        return model(input_ids=ids).logits.float()


@pytest.fixture(scope="module")
def qlora_sft(tmp_path_factory):
    """One sft run with peft=qlora and peft.merge_adapter=true (shared by the tests below)."""
    import warnings

    tmp = tmp_path_factory.mktemp("qlora_sft")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = train_lm(tmp, "trainer=sft", "peft=qlora", "peft.lora_r=8", "peft.merge_adapter=true",
                          "training.lr=5e-3", "training.epochs=2")
    # bitsandbytes' CPU kernel without autograd (compat.bitsandbytes.cpu_safe): the gradient would be lost silently
    assert not [w for w in caught if "autograd kernel was not registered" in str(w.message)]
    return result


@pytest.mark.slow
def test_qlora_sft_learns_and_keeps_its_adapter_in_full_precision(qlora_sft):
    from safetensors import safe_open

    out, metrics, _ = qlora_sft
    assert metrics["train_loss"] < metrics["first_train_loss"] - 0.1, metrics
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["r"] == 8 and not (out / "model.safetensors").exists()
    with safe_open(str(out / "adapter_model.safetensors"), "pt") as f:
        dtypes = {str(f.get_tensor(k).dtype) for k in f.keys()}
    assert dtypes == {"torch.float32"}, dtypes  # TRL's bf16 cast undone: the optimizer's updates are not rounded away
    assert any("merged" in n and "full precision" in n for n in metrics["notes"]), metrics["notes"]
    card = (out / "README.md").read_text()
    assert "| peft | qlora: r=8, alpha=32, dropout=0.05, base in 4-bit |" in card
    assert f"| mixed precision | {precision_used('auto')} |" in card  # what ran, not just the setting


@pytest.mark.slow
def test_qlora_adapter_on_the_full_precision_base_matches_the_4bit_model_and_merges(qlora_sft):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, LlamaForCausalLM

    out, _, _ = qlora_sft
    model_cfg = compose().model  # the tiny model: the run's base
    assert json.loads((out / "adapter_config.json").read_text())["base_model_name_or_path"] == str(
        models.tiny_model_dir())
    ids = torch.tensor([models.load_tokenizer(model_cfg)(
        "What is 2 plus 3? The answer is five, and four plus four is eight.")["input_ids"]])
    quantized = PeftModel.from_pretrained(models.load_causal_lm(model_cfg, quantization=models.Quantization(4)),
                                          str(out)).eval()
    full = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(models.tiny_model_dir()), str(out)).eval()
    q, f = logits(quantized, ids), logits(full, ids)
    kl = torch.nn.functional.kl_div(q.log_softmax(-1), f.log_softmax(-1), log_target=True, reduction="none")
    kl = float(kl.sum(-1).mean())
    print(f"KL(4-bit || full precision) = {kl:.4f} per token; top-1 agreement "
          f"{float((q.argmax(-1) == f.argmax(-1)).float().mean()):.2f}")
    assert kl < KL_4BIT, kl
    # the adapter does something: its effect on the full-precision base is larger than the 4-bit rounding
    with full.disable_adapter():
        plain = logits(full, ids)
    assert float((f - plain).abs().mean()) > float((q - f).abs().mean())

    merged = AutoModelForCausalLM.from_pretrained(out / "merged")
    assert isinstance(merged, LlamaForCausalLM)
    assert "quantization_config" not in json.loads((out / "merged" / "config.json").read_text())
    assert all(p.dtype == torch.float32 for p in merged.parameters())
    assert torch.allclose(logits(merged, ids), f, atol=1e-4)
    # generate: the merged model by default; the adapter on its 4-bit base, as trained, when asked for it
    assert generate.Model(generate.locate(str(out))).found.kind == "merged"
    on_4bit = generate.Model(generate.Found(str(out), "adapter", "sft", False))
    assert on_4bit.quantized == 4 and on_4bit.model.base_model.model.is_loaded_in_4bit
    assert isinstance(on_4bit.answer([{"role": "user", "content": "What is 2 plus 3?"}], 8, 0.0), str)


@pytest.mark.slow
def test_qlora_8bit_dpo_learns(tmp_path):
    out, m, _ = train_pairs(tmp_path, "trainer=dpo", "peft=qlora", "peft.bits=8", "training.lr=5e-3")
    assert m["eval_logp_margin_after"] > m["eval_logp_margin_before"], m
    assert "reference model: the base model with the LoRA adapter disabled" in m["notes"]
    assert (out / "adapter_config.json").is_file()
    model = generate.Model(generate.locate(str(out)))  # python -m autotrain_hydra.generate: on its 8-bit base
    assert model.found.kind == "adapter" and model.quantized == 8
    assert isinstance(model.answer([{"role": "user", "content": "Hello"}], 8, 0.0), str)


@pytest.mark.slow
@pytest.mark.parametrize("trainer,extra", [
    ("generic", ["training.block_size=64"]),
    ("orpo", []),
    ("kto", []),
    ("reward", ["peft.lora_r=4"]),
    ("grpo", ["trainer.grpo.num_generations=2", "training.batch_size=2", "trainer.grpo.max_completion_length=8"]),
    ("ppo", ["trainer.rl.chunk_size=4", "trainer.rl.mini_batch_size=2", "training.batch_size=2",
             "trainer.rl.max_new_tokens=8"]),
])
def test_every_trainer_takes_qlora(tmp_path, trainer, extra, tiny_scorer):
    """Two optimizer steps each on the 4-bit base: the adapter (a reward model: adapter and head, merged into its
    full-precision reload; ppo: its value head beside) trains and is saved."""
    from safetensors import safe_open

    reward = [f"trainer.rl.reward_model_path={tiny_scorer}"] if trainer == "ppo" else []
    out, m, _ = train_in(tmp_path, ["training.warmup_ratio=0", "training.logging_steps=1"], f"trainer={trainer}",
                         "peft=qlora", "training.max_steps=2", "training.lr=1e-2", *reward, *extra)
    assert m["global_step"] == 2
    if trainer == "reward":  # the scorer is saved merged, in full precision, head included
        from transformers import AutoModelForSequenceClassification

        import torch

        scorer = AutoModelForSequenceClassification.from_pretrained(out)
        config = json.loads((out / "config.json").read_text())
        assert "quantization_config" not in config and config["pad_token_id"] is not None  # it scores batches
        with safe_open(str(out / "adapter" / "adapter_model.safetensors"), "pt") as f:
            (head,) = [f.get_tensor(k) for k in f.keys() if k.endswith("score.weight")]  # trained in full
        assert head.dtype == torch.float32 and scorer.score.weight.dtype == torch.float32
        assert torch.equal(scorer.score.weight, head)  # the merged scorer has the head that trained
        return
    with safe_open(str(out / "adapter_model.safetensors"), "pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    assert tensors and all(str(t.dtype) == "torch.float32" for t in tensors.values())
    assert any(float(t.abs().sum()) > 0 for k, t in tensors.items() if "lora_B" in k)  # B starts at zero: it moved
    model = generate.Model(generate.locate(str(out)))  # python -m autotrain_hydra.generate on this trainer's output
    assert model.found.trainer == trainer and model.quantized == 4
    assert isinstance(model.answer([{"role": "user", "content": "What is 2 plus 3?"}], 4, 0.0), str)


# ----------------------------------------------------------------------------------------------- rules (fast)
def test_bits_without_qlora_is_an_error_naming_the_fix():
    report = check("peft=lora", "peft.bits=8", filesystem=False)
    assert messages(report, "error") == ["peft.bits quantises the base model only with peft=qlora (this run: "
                                         "peft=lora)"]
    assert report.errors[0].fix == "use peft=qlora (LoRA on a 4-bit or 8-bit base), or remove peft.bits"
    assert messages(check("peft=qlora", "peft.bits=3", filesystem=False), "error") == [
        "peft.bits must be one of 4, 8"]
    assert messages(check("peft=qlora", "peft.bits=8", filesystem=False), "error") == []


def test_qlora_is_refused_with_sharded_weights_and_without_bitsandbytes(monkeypatch):
    report = check("peft=qlora", "launcher=multiprocess", "launcher.strategy=fsdp", filesystem=False)
    assert messages(report, "error") == [
        "peft=qlora is not sharded here: launcher.strategy=fsdp splits the weights across processes, and "
        "bitsandbytes' quantised weights are kept whole"]
    import importlib.util

    find = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "bitsandbytes" else find(name, *a))
    assert messages(check("peft=qlora", filesystem=False), "error") == [
        "peft=qlora loads the base model through bitsandbytes, which is not installed"]


def test_a_bitsandbytes_that_does_not_load_is_refused_before_the_model(monkeypatch):
    from autotrain_hydra.compat import bitsandbytes
    from autotrain_hydra.errors import HardwareError
    from autotrain_hydra.trainers.common import hardware_check

    monkeypatch.setattr(bitsandbytes, "available", lambda: "bitsandbytes does not load here (RuntimeError: no lib)")
    with pytest.raises(HardwareError, match=r"peft=qlora loads the base through bitsandbytes, and bitsandbytes does "
                                            r"not load here \(RuntimeError: no lib\)"):
        hardware_check(compose("peft=qlora"))
    hardware_check(compose("peft=lora"))  # not asked: not checked


def test_the_flag_cli_and_other_tools_names_reach_qlora():
    assert translate(["--trainer", "sft", "--peft", "qlora", "--bits", "8"]).overrides == [
        "trainer=sft", "peft=qlora", "peft.bits=8"]
    assert translate(["--trainer", "sft", "--peft"]).overrides == ["trainer=sft", "peft=lora"]
    from autotrain_hydra.schema.keys import alias_for

    assert alias_for("quantization") == alias_for("quantization_bit") == "peft.bits"
