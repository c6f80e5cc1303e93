"""The speed defaults are correct: varlen attention on packed rows equals attention on each sequence alone, the
attention kernel and optimizer are chosen for the hardware, settings the machine cannot run are refused before any
model loads, and packed SFT counts the real tokens it trains on."""

from types import SimpleNamespace

import pytest
import torch

from autotrain_hydra import models
from autotrain_hydra.attention import segments, varlen_sdpa_attention
from autotrain_hydra.compat.hydra import compose_config
from autotrain_hydra.errors import HardwareError
from autotrain_hydra.trainers.common import attn_implementation, hardware_check, optimizer_name


@pytest.fixture(scope="module")
def pair():
    from transformers import AutoModelForCausalLM

    import autotrain_hydra.attention  # noqa: F401

    path = models.tiny_model_dir()
    return (AutoModelForCausalLM.from_pretrained(path, attn_implementation="sdpa"),
            AutoModelForCausalLM.from_pretrained(path, attn_implementation="varlen_sdpa"))


@pytest.mark.slow
def test_varlen_attention_on_a_packed_row_equals_each_sequence_alone(pair):
    ref, varlen = pair
    torch.manual_seed(0)
    seqs = [torch.randint(5, 500, (1, n)) for n in (7, 5, 11)]
    packed = torch.cat(seqs, 1)
    position_ids = torch.cat([torch.arange(s.shape[1]) for s in seqs]).unsqueeze(0)
    out = varlen(input_ids=packed, position_ids=position_ids, use_cache=False).logits
    start = 0
    for s in seqs:
        alone = ref(input_ids=s, use_cache=False).logits
        assert torch.allclose(out[:, start:start + s.shape[1]], alone, atol=1e-5)
        start += s.shape[1]
    # sdpa on the same packed row without position ids would let the sequences see each other: not equal
    leaky = ref(input_ids=packed, use_cache=False).logits
    assert not torch.allclose(leaky[:, 7:12], out[:, 7:12], atol=1e-3)
    # gradients flow through every sequence
    out.sum().backward()
    assert all(p.grad is not None for p in varlen.parameters() if p.requires_grad)


@pytest.mark.slow
def test_varlen_attention_on_padded_and_plain_batches_is_sdpa(pair):
    ref, varlen = pair
    ids = torch.tensor([[1, 20, 30, 40, 50], [1, 20, 30, 0, 0]])
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    with torch.no_grad():
        assert torch.allclose(varlen(input_ids=ids, attention_mask=mask).logits,
                              ref(input_ids=ids, attention_mask=mask).logits, atol=1e-6)
        assert torch.allclose(varlen(input_ids=ids).logits, ref(input_ids=ids).logits, atol=1e-6)
        prompt = torch.tensor([[1, 20, 30]])
        assert torch.equal(varlen.generate(input_ids=prompt, max_new_tokens=4, do_sample=False),
                           ref.generate(input_ids=prompt, max_new_tokens=4, do_sample=False))


def test_attention_and_optimizer_follow_the_hardware():
    if torch.cuda.is_available():
        pytest.skip("the CPU choices")
    # several sequences in a row (padding-free batches, packed rows): attention within each sequence
    assert attn_implementation(compose_config(["trainer=sft"]), several_per_row=True) == "varlen_sdpa"
    assert attn_implementation(compose_config(["trainer=dpo"])) == "sdpa"
    assert attn_implementation(compose_config(["training.attn_implementation=eager"]), several_per_row=True) == "eager"
    assert optimizer_name("adamw_torch") == "adamw_torch"  # torch's fused AdamW is slower on a CPU
    assert optimizer_name("adamw_hf") == "adamw_torch" and optimizer_name("sgd") == "sgd"


@pytest.mark.parametrize("cuda,bf16,setting,said", [
    (False, False, "auto", "auto: none"), (False, False, None, "auto: none"), (False, False, "bf16", "bf16"),
    (False, False, "fp32", "none"), (True, True, "auto", "auto: bf16"), (True, False, "auto", "auto: none"),
    (True, False, "fp16", "fp16"), (True, True, "fp32", "none")])
def test_the_model_card_says_the_mixed_precision_that_ran(monkeypatch, cuda, bf16, setting, said):
    """``precision_used`` (the model card's row): what ``training.mixed_precision`` gives on the machine."""
    from autotrain_hydra.trainers.common import precision_used

    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16)
    assert precision_used(setting) == said


@pytest.mark.slow
@pytest.mark.parametrize("override,text", [
    ("training.use_liger_kernel=true", "training.use_liger_kernel=true needs a CUDA GPU and the liger-kernel package"),
    ("training.attn_implementation=flash_attention_2",
     "training.attn_implementation=flash_attention_2 needs a CUDA GPU and the flash-attn package"),
    ("training.attn_implementation=flex_attention", "flex_attention has no backward pass on a CPU"),
])
def test_gpu_only_settings_are_refused_before_loading(override, text, tmp_path, monkeypatch):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    from autotrain_hydra.run import run

    with pytest.raises(HardwareError, match=text):
        hardware_check(compose_config([override]))
    monkeypatch.setattr(models, "load_causal_lm", lambda *a, **k: pytest.fail("model loaded"))
    with pytest.raises(HardwareError, match=text):
        run(compose_config([override, f"output_dir={tmp_path / 'o'}"]))


@pytest.mark.slow
@pytest.mark.parametrize("packing", ["true", "false"])
def test_sft_packed_and_unpacked_train_and_count_real_tokens(tmp_path, packing):
    import json

    from autotrain_hydra.run import run

    cfg = compose_config(["trainer=sft", f"training.packing={packing}", "trainer.max_seq_length=128",
                          "training.epochs=4", "training.logging_steps=1", f"output_dir={tmp_path / 'o'}"])
    run(cfg)
    m = json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert m["train_loss"] < m["first_train_loss"] - 0.3
    # the real tokens of 4 epochs of the sample: the same count packed or not (no padding counted)
    from autotrain_hydra.data import load_text_splits, sft_sequences
    from autotrain_hydra.schema.resolve import resolve

    cfg = resolve(cfg).cfg
    tok = models.load_tokenizer(cfg.model)
    splits = load_text_splits(cfg.data)
    real = sum(len(ids) for ids in sft_sequences(splits.train, tok, "messages", False, "x")["input_ids"])
    assert m["train_tokens"] == 4 * real
    assert m["train_tokens_per_second"] > 0


def test_varlen_attention_keeps_a_models_sliding_window():
    """Mistral/Qwen2-style local attention: a packed sequence longer than the window sees only its last N tokens, as
    the padded model's sdpa mask does (varlen_sdpa ran full causal attention on each sequence before)."""
    import autotrain_hydra.attention  # noqa: F401
    from transformers import MistralConfig, MistralForCausalLM

    from autotrain_hydra import padding_free

    torch.manual_seed(0)
    config = MistralConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                           num_attention_heads=4, num_key_value_heads=2, sliding_window=3, pad_token_id=0)
    padded = MistralForCausalLM(config).eval()
    packed = MistralForCausalLM._from_config(config, attn_implementation="varlen_sdpa").eval()
    packed.load_state_dict(padded.state_dict())
    rows = [[5, 6, 7, 8, 9, 10, 11, 12], [13, 14, 15]]
    ids = torch.tensor([r + [0] * (8 - len(r)) for r in rows])
    mask = torch.tensor([[1] * len(r) + [0] * (8 - len(r)) for r in rows])
    with torch.no_grad():
        want = padded(input_ids=ids, attention_mask=mask).logits
        got = padding_free.install(packed)(input_ids=ids, attention_mask=mask).logits
        full = MistralForCausalLM._from_config(MistralConfig(**{**config.to_dict(), "sliding_window": None}))
        full.load_state_dict(padded.state_dict())
        unwindowed = full.eval()(input_ids=ids, attention_mask=mask).logits
    keep = mask.bool()
    torch.testing.assert_close(got[keep], want[keep], rtol=1e-4, atol=1e-5)
    assert not torch.allclose(unwindowed[keep], want[keep], atol=1e-3)  # the window matters in this example



def _per_sequence_sdpa(query, key, value, position_ids, scale):
    """The reference: ``F.scaled_dot_product_attention`` on each sequence alone, (B, T, H, D)."""
    rows = [torch.cat([torch.nn.functional.scaled_dot_product_attention(
        query[b:b + 1, :, s:e], key[b:b + 1, :, s:e], value[b:b + 1, :, s:e], is_causal=True, scale=scale,
        enable_gqa=query.shape[1] != key.shape[1]) for s, e in segments(position_ids[min(b, len(position_ids) - 1)])],
        dim=2) for b in range(query.shape[0])]
    return torch.cat(rows, dim=0).transpose(1, 2)


def _kernel_path(out) -> bool:
    return type(out.grad_fn).__name__ == "_CausalPerSequenceBackward"


def _equal_to_each_sequence_alone(q, k, v, position_ids, module=SimpleNamespace(training=True), **kwargs):
    """Run varlen_sdpa; its output and gradients equal sdpa's on each sequence alone (exactly); its output."""
    out, _ = varlen_sdpa_attention(module, q, k, v, None, scaling=0.25, position_ids=position_ids, **kwargs)
    want = _per_sequence_sdpa(q, k, v, position_ids, 0.25)
    torch.testing.assert_close(out, want, rtol=0, atol=0)
    grad = torch.randn_like(out)
    for got, expected in zip(torch.autograd.grad(out, (q, k, v), grad), torch.autograd.grad(want, (q, k, v), grad)):
        assert got.dtype == expected.dtype
        torch.testing.assert_close(got, expected, rtol=0, atol=0)
    return out


@pytest.mark.parametrize("kv_heads,dtype", [(4, torch.float32), (2, torch.float32), (4, torch.bfloat16)])
def test_varlen_attention_on_a_cpu_gives_each_sequences_own_values_and_gradients(kv_heads, dtype):
    """The CPU kernels' path (compat/torch.py; each gradient written in place): the same output and gradients as
    sdpa on each sequence alone, for two packed rows (a 1-token sequence first in one), grouped-query attention and
    bf16."""
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 37, h, 16, dtype=dtype).transpose(1, 2).requires_grad_()
               for h in (4, kv_heads, kv_heads))
    position_ids = torch.stack([torch.cat([torch.arange(10), torch.arange(20), torch.arange(7)]),
                                torch.cat([torch.arange(1), torch.arange(36)])])
    assert _kernel_path(_equal_to_each_sequence_alone(q, k, v, position_ids))


def test_varlen_attention_with_one_row_of_positions_for_a_batch_and_a_window_no_sequence_exceeds():
    """Position ids of one row serve every row of the batch; a sliding window longer than every sequence keeps the
    kernels' path."""
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 12, 2, 8).transpose(1, 2).requires_grad_() for _ in range(3))
    position_ids = torch.cat([torch.arange(5), torch.arange(7)])[None]
    assert _kernel_path(_equal_to_each_sequence_alone(q, k, v, position_ids, sliding_window=7))


def test_varlen_attention_takes_sdpa_per_sequence_where_the_kernels_do_not_apply():
    """float64, a head's vector not contiguous, another head size for the values, attention dropout in training and
    a sequence longer than a sliding window go through sdpa on each sequence (as sdpa itself would not take the CPU
    kernels, or they lack the feature): the same values as sdpa; without dropout, in eval, the kernels' path."""
    torch.manual_seed(0)
    position_ids = torch.cat([torch.arange(5), torch.arange(7)])[None]
    qkv = lambda dtype=torch.float32, d=8: [torch.randn(1, 2, 12, d, dtype=dtype).requires_grad_()  # noqa: E731
                                            for _ in range(3)]
    strided = [torch.randn(1, 2, 8, 12).transpose(2, 3).requires_grad_() for _ in range(3)]  # stride(-1) == 12
    q, k, _ = qkv()
    for inputs in (qkv(torch.float64), strided, [q, k, torch.randn(1, 2, 12, 4, requires_grad=True)]):
        out, _ = varlen_sdpa_attention(SimpleNamespace(training=True), *inputs, None, position_ids=position_ids)
        assert not _kernel_path(out)
        want = _per_sequence_sdpa(*inputs, position_ids, None)
        torch.testing.assert_close(out, want)
    for module, kwargs in ((SimpleNamespace(training=True), {"dropout": 0.5}),
                           (SimpleNamespace(training=False), {"sliding_window": 3})):
        out, _ = varlen_sdpa_attention(module, *qkv(), None, position_ids=position_ids, **kwargs)
        assert not _kernel_path(out)
    out, _ = varlen_sdpa_attention(SimpleNamespace(training=False), *qkv(), None, dropout=0.5,
                                   position_ids=position_ids)  # dropout is off in eval
    assert _kernel_path(out)


def test_varlen_attention_on_a_cpu_in_bf16_autocast_computes_as_sdpa_does():
    """``training.mixed_precision=bf16`` on a CPU: in autocast the projections give bf16 while the rotary embedding
    gives float32; sdpa casts them all to bf16, and so does the kernels' path."""
    torch.manual_seed(0)
    q = torch.randn(1, 12, 2, 8).transpose(1, 2).requires_grad_()
    k, v = (torch.randn(1, 12, 2, 8, dtype=torch.bfloat16).transpose(1, 2).requires_grad_() for _ in range(2))
    position_ids = torch.cat([torch.arange(5), torch.arange(7)])[None]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, _ = varlen_sdpa_attention(SimpleNamespace(training=True), q, k, v, None, position_ids=position_ids)
        want = _per_sequence_sdpa(q, k, v, position_ids, None)
    assert out.dtype == want.dtype == torch.bfloat16 and _kernel_path(out)
    torch.testing.assert_close(out, want, rtol=0, atol=0)
    grad = torch.randn_like(out)
    for got, expected in zip(torch.autograd.grad(out, (q, k, v), grad), torch.autograd.grad(want, (q, k, v), grad)):
        assert got.dtype == expected.dtype
        torch.testing.assert_close(got, expected, rtol=0, atol=0)


@pytest.mark.parametrize("dtype,path", [(torch.float64, False), (torch.float16, True)])
def test_varlen_attention_in_autocast_casts_as_sdpa_does(dtype, path):
    """Autocast casts floating inputs other than float64 to its dtype (float16 too), as sdpa's autocast does: float16
    takes the kernels' path in bf16, float64 stays float64 and takes sdpa; the values are sdpa's either way."""
    torch.manual_seed(0)
    q, k, v = (torch.randn(1, 2, 12, 8, dtype=dtype, requires_grad=True) for _ in range(3))
    position_ids = torch.cat([torch.arange(5), torch.arange(7)])[None]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, _ = varlen_sdpa_attention(SimpleNamespace(training=True), q, k, v, None, position_ids=position_ids)
        want = _per_sequence_sdpa(q, k, v, position_ids, None)
    assert out.dtype == want.dtype and _kernel_path(out) == path
    torch.testing.assert_close(out, want, rtol=0, atol=0)
