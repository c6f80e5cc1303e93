"""Padding-free forwards (autotrain_hydra.padding_free): the same losses and gradients as the padded forward, for the
model alone and for each preference trainer's loss on one batch of pairs of different lengths."""

import copy

import pytest
import torch

from autotrain_hydra import models, padding_free
from autotrain_hydra.compat.hydra import compose_config

TOLERANCE = dict(rtol=1e-4, atol=1e-5)


@pytest.fixture(scope="module")
def tiny():
    import autotrain_hydra.attention  # noqa: F401  (registers varlen_sdpa)

    cfg = compose_config(["model=tiny"])
    torch.manual_seed(0)
    model = models.load_causal_lm(cfg.model, attn_implementation="varlen_sdpa")
    return cfg, model, models.load_tokenizer(cfg.model)


@pytest.fixture(scope="module")
def pairs(tiny):
    from datasets import Dataset

    from autotrain_hydra import data, paths

    rows = Dataset.from_json(paths.asset("data/preference.jsonl")).select(range(6))
    cols = data.PreferenceColumns("prompt", "chosen", "rejected")
    out = data.preference_sequences(rows, tiny[2], cols, "the sample")
    return out.remove_columns(["prompt_truncated", "completion_truncated"])


def grads(model):
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def both(model, loss_of):
    """(loss, grads) of the padded forward, then of the padding-free one, on a fresh copy each; the second really
    ran packed (one row)."""
    results, rows = [], []
    pack = padding_free.pack
    padding_free.pack = lambda ids, mask: rows.append(ids.shape[0]) or pack(ids, mask)
    try:
        for packed in (False, True):
            m = copy.deepcopy(model)
            m.zero_grad()
            loss = loss_of(m, packed)
            loss.backward()
            results.append((loss.detach(), grads(m)))
            assert bool(rows) == packed  # the padding-free run packed its batches (several rows into one)
    finally:
        padding_free.pack = pack
    return results


def assert_same(padded, packed):
    (loss_a, grads_a), (loss_b, grads_b) = padded, packed
    torch.testing.assert_close(loss_b, loss_a, **TOLERANCE)
    assert grads_a.keys() == grads_b.keys() and grads_a
    for name in grads_a:
        torch.testing.assert_close(grads_b[name], grads_a[name], **TOLERANCE, msg=name)


def test_a_padded_batch_runs_as_one_row_with_the_same_logits_and_loss(tiny):
    cfg, model, tok = tiny
    rows = [tok("short one")["input_ids"], tok("a somewhat longer text than the first")["input_ids"], [5, 6]]
    n = max(map(len, rows))
    ids = torch.tensor([r + [tok.pad_token_id] * (n - len(r)) for r in rows])
    mask = torch.tensor([[1] * len(r) + [0] * (n - len(r)) for r in rows])
    labels = ids.masked_fill(mask == 0, -100)
    calls = []
    padded, packed = both(model, lambda m, packed: calls.append(
        (padding_free.install(m) if packed else m)(input_ids=ids, attention_mask=mask, labels=labels))
                          or calls[-1].loss)
    assert_same(padded, packed)
    torch.testing.assert_close(calls[1].logits[mask.bool()], calls[0].logits[mask.bool()], **TOLERANCE)
    assert calls[1].logits.shape == calls[0].logits.shape and not calls[1].logits[~mask.bool()].any()
    ids_1, pos, keep = padding_free.pack(ids, mask)
    assert ids_1.shape == (1, int(mask.sum())) and pos[0].tolist()[: len(rows[0]) + 1] == [*range(len(rows[0])), 0]


def test_dpo_loss_and_gradients_padding_free_equal_padded(tiny, pairs, tmp_path):
    from trl import DPOConfig, DPOTrainer

    from autotrain_hydra.compat.trl import pretokenized_dpo

    cfg, model, tok = tiny
    args = DPOConfig(output_dir=str(tmp_path), per_device_train_batch_size=len(pairs), report_to=[], beta=0.1,
                     bf16=False, max_length=512)

    def loss_of(m, packed):
        ref = copy.deepcopy(model).eval().requires_grad_(False)
        trainer = pretokenized_dpo(DPOTrainer)(model=m, ref_model=ref, args=args, train_dataset=pairs,
                                               processing_class=tok)
        if packed:  # as trainers.dpo does: after TRL patched the forward (its fused LM head)
            padding_free.install(trainer.model)
            padding_free.install(trainer.ref_model)
        batch = trainer.data_collator([pairs[i] for i in range(len(pairs))])
        assert (batch["attention_mask"] == 0).any()  # pairs of different lengths: padding to skip
        return trainer.compute_loss(m, batch)

    assert_same(*both(model, loss_of))


def cpu_args(tmp_path, batch):
    return dict(output_dir=str(tmp_path), per_device_train_batch_size=batch, report_to=[], bf16=False, use_cpu=True)


def test_orpo_loss_and_gradients_padding_free_equal_padded(tiny, pairs, tmp_path):
    from autotrain_hydra.compat.trl import orpo_classes, pretokenized_orpo
    from autotrain_hydra.trainers.orpo import orpo_features

    ORPOConfig, ORPOTrainer = orpo_classes()
    cfg, model, tok = tiny
    args = ORPOConfig(**cpu_args(tmp_path, len(pairs)), beta=0.1, max_length=512, remove_unused_columns=False)

    def loss_of(m, packed):
        trainer = pretokenized_orpo(ORPOTrainer, orpo_features)(model=m, args=args, train_dataset=pairs,
                                                                processing_class=tok)
        if packed:
            padding_free.install(trainer.model)
        batch = next(iter(trainer.get_train_dataloader()))
        lengths = {batch[f"{k}_attention_mask"].sum(-1).tolist().__str__() for k in ("chosen", "rejected")}
        assert len(lengths) == 2  # chosen and rejected of other lengths: padding in the concatenated batch
        return trainer.compute_loss(m, batch)

    assert_same(*both(model, loss_of))


def test_kto_loss_and_gradients_padding_free_equal_padded(tiny, tmp_path):
    from datasets import Dataset
    from trl import KTOConfig, KTOTrainer

    from autotrain_hydra import paths

    cfg, model, tok = tiny
    rows = Dataset.from_json(paths.asset("data/feedback.jsonl")).select(range(8))
    args = KTOConfig(**cpu_args(tmp_path, 8), beta=0.1, max_length=512, train_sampling_strategy="sequential")

    def loss_of(m, packed):
        ref = copy.deepcopy(model).eval().requires_grad_(False)
        trainer = KTOTrainer(model=m, ref_model=ref, args=args, train_dataset=rows, processing_class=tok)
        if packed:  # as trainers.kto does: after TRL patched the forward
            padding_free.install(trainer.model)
            padding_free.install(trainer.ref_model)
        batch = next(iter(trainer.get_train_dataloader()))
        return trainer.compute_loss(m, batch)

    assert_same(*both(model, loss_of))


def test_reward_scores_and_pairwise_loss_padding_free_equal_padded(tiny):
    """The scorer is pooled where transformers pools a padded row: its last token that is not the pad token (a
    sequence ending in EOS, the tiny tokenizer's pad token too, is scored at the token before it)."""
    from autotrain_hydra.trainers.reward import pairwise_loss

    cfg, _, tok = tiny
    torch.manual_seed(0)
    scorer = models.load_sequence_classifier(cfg.model, num_labels=2, attn_implementation="varlen_sdpa")
    scorer.config.pad_token_id = tok.pad_token_id
    assert padding_free.can_score(scorer)
    texts = ["a short answer", "a much longer answer than the other one, with more words", "yes", "no thanks"]
    rows = [tok(t)["input_ids"] for t in texts]
    rows[1] = rows[1] + [tok.eos_token_id]
    n = max(map(len, rows))
    ids = torch.tensor([r + [tok.pad_token_id] * (n - len(r)) for r in rows])
    mask = torch.tensor([[1] * len(r) + [0] * (n - len(r)) for r in rows])
    seen = []

    def loss_of(m, packed):
        if packed:
            padding_free.install(m, scorer=True)
        logits = m(input_ids=ids, attention_mask=mask, use_cache=False).logits
        seen.append(logits.detach())
        chosen, rejected = logits.float().chunk(2)
        return pairwise_loss(chosen, rejected, 0.1)

    assert_same(*both(scorer, loss_of))
    assert seen[1].shape == seen[0].shape == (4, 2)
    torch.testing.assert_close(seen[1], seen[0], **TOLERANCE)


def test_a_fresh_process_loads_a_scorer_with_the_packed_attention():
    """Bug: trainer=reward (padding-free by default) failed on a CPU in a fresh process: varlen_sdpa was registered
    only by the causal-LM loader."""
    import subprocess
    import sys

    code = ("from autotrain_hydra import models; from autotrain_hydra.compat.hydra import compose_config; "
            "m = models.load_sequence_classifier(compose_config(['model=tiny']).model, attn_implementation="
            "'varlen_sdpa'); print(m.config._attn_implementation)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and out.stdout.strip().endswith("varlen_sdpa"), out.stderr[-2000:]



def test_a_call_without_use_cache_and_generation(tiny):
    """A packed call never builds a cache (transformers finds a packed row's sequences by their position ids only
    without one: sdpa attended across sequences when the caller left use_cache out); generation is the model's own
    (prefill and decoding with a cache), padded left as generate() pads."""
    cfg, _, tok = tiny
    torch.manual_seed(0)
    sdpa = models.load_causal_lm(cfg.model, attn_implementation="sdpa")
    ids = torch.tensor([[5, 6, 7, 8, 9], [10, 11, 12, 0, 0]])
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    import inspect

    with torch.no_grad():
        want = sdpa(input_ids=ids, attention_mask=mask).logits
        wrapped = padding_free.install(copy.deepcopy(sdpa))
        assert inspect.signature(wrapped.forward) == inspect.signature(sdpa.forward)  # input_ids kept (column filter)
        got = wrapped(input_ids=ids, attention_mask=mask).logits
        torch.testing.assert_close(got[mask.bool()], want[mask.bool()], **TOLERANCE)
        left = torch.tensor([[5, 6, 7, 8], [0, 0, 10, 11]])
        left_mask = torch.tensor([[1, 1, 1, 1], [0, 0, 1, 1]])
        generated = [m.generate(input_ids=left, attention_mask=left_mask, max_new_tokens=4, do_sample=False,
                                pad_token_id=0) for m in (sdpa, wrapped)]
    assert torch.equal(generated[0], generated[1])


def test_padding_free_needs_an_attention_that_keeps_to_each_sequence():
    from tests.helpers import check, messages

    assert messages(check("trainer=dpo", "training.attn_implementation=sdpa", filesystem=False), "warning") == [
        "training.attn_implementation=sdpa attends over a whole packed row: batches are padded instead of "
        "padding-free"]
    assert not messages(check("trainer=dpo", "training.attn_implementation=sdpa", "training.padding_free=false",
                              filesystem=False), "warning")
    assert not messages(check("trainer=sft", "training.attn_implementation=sdpa", "training.packing=true",
                              filesystem=False), "warning")  # packed rows: packing's own choice, not padded
    assert messages(check("trainer=ppo", "training.padding_free=false", filesystem=False), "warning") == [
        "padding_free only applies to Generic/SFT/DPO/ORPO/Reward/KTO trainers, will be ignored"]
    from autotrain_hydra import registry
    from autotrain_hydra.trainers.common import padding_free_batches
    from tests.helpers import resolved

    assert "training.padding_free" in registry.RESUME_MAY_CHANGE  # checkpoints from before the key resume
    assert padding_free_batches(resolved("trainer=dpo"))
    assert not padding_free_batches(resolved("trainer=dpo", "training.attn_implementation=eager"))
