"""PPO: the math against hand-computed values, learning against a trained reward model, the reward → PPO workflow."""

import json

import pytest
import torch

from autotrain_hydra import models
from autotrain_hydra.compat.hydra import compose_config
from autotrain_hydra.run import run
from autotrain_hydra.trainers import ppo


# ----------------------------------------------------------------------------------------------- math
def test_gae_and_returns_hand_computed():
    rewards = torch.tensor([[1.0, 0.0, 2.0]])
    values = torch.tensor([[0.5, 0.2, 0.1]])
    mask = torch.ones(1, 3)
    g, lam = 0.9, 0.8
    d2 = 2.0 - 0.1                      # last token: no next value
    d1 = 0.0 + g * 0.1 - 0.2
    d0 = 1.0 + g * 0.2 - 0.5
    a2 = d2
    a1 = d1 + g * lam * a2
    a0 = d0 + g * lam * a1
    adv, ret = ppo.gae(rewards, values, mask, g, lam)
    assert adv.tolist()[0] == pytest.approx([a0, a1, a2])
    assert ret.tolist()[0] == pytest.approx([a0 + 0.5, a1 + 0.2, a2 + 0.1])


def test_gae_ignores_tokens_after_the_mask():
    rewards = torch.tensor([[1.0, 3.0, 0.0]])
    values = torch.tensor([[0.5, 0.2, 9.0]])  # the value at a masked position must not leak in
    mask = torch.tensor([[1.0, 1.0, 0.0]])
    adv, _ = ppo.gae(rewards, values, mask, 1.0, 1.0)
    assert adv.tolist()[0] == pytest.approx([1.0 + 3.0 - 0.5, 3.0 - 0.2, 0.0])


def test_response_mask_after_eos():
    ids = torch.tensor([[5, 6, 2, 7, 2], [5, 6, 7, 8, 9], [2, 4, 4, 4, 4]])
    assert ppo.response_mask(ids, 2, True).tolist() == [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]]
    assert ppo.response_mask(ids, 2, False).tolist() == [[1] * 5] * 3


def test_kl_penalty_and_score_on_last_token():
    scores = torch.tensor([2.0, -1.0])
    logp = torch.tensor([[-1.0, -2.0, -3.0], [-1.0, -1.0, -1.0]])
    ref = torch.tensor([[-1.5, -2.0, -2.0], [-2.0, -1.0, -1.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0]])
    rewards, kl = ppo.kl_penalised_rewards(scores, logp, ref, mask, kl_coef=0.2)
    assert torch.allclose(kl, torch.tensor([[0.5, 0.0, -1.0], [1.0, 0.0, 0.0]]))
    assert torch.allclose(rewards, torch.tensor([[-0.1, 0.0, 0.2 + 2.0], [-0.2 - 1.0, 0.0, 0.0]]))


def test_clipped_policy_loss_hand_computed():
    old = torch.zeros(1, 3)
    new = torch.log(torch.tensor([[1.5, 0.5, 1.1]]))  # ratios 1.5, 0.5, 1.1
    adv = torch.tensor([[1.0, -1.0, 2.0]])
    mask = torch.ones(1, 3)
    loss, clipfrac = ppo.clipped_policy_loss(new, old, adv, mask, clip_range=0.2)
    # per token max(-A r, -A clip(r)): 1.5→max(-1.5,-1.2)=-1.2; 0.5→max(0.5,0.8)=0.8; 1.1→max(-2.2,-2.2)=-2.2
    assert loss.item() == pytest.approx((-1.2 + 0.8 - 2.2) / 3)
    assert clipfrac.item() == pytest.approx(2 / 3)
    assert ppo.value_loss(torch.tensor([[1.0, 3.0]]), torch.tensor([[0.0, 1.0]]), torch.tensor([[1.0, 0.0]])).item() \
        == pytest.approx(0.5)


def test_whiten_uses_valid_tokens_only():
    x = torch.tensor([[1.0, 3.0, 100.0]])
    w = ppo.whiten(x, torch.tensor([[1.0, 1.0, 0.0]]))
    assert w.tolist()[0] == pytest.approx([-1.0, 1.0, 0.0], abs=1e-4)


# ----------------------------------------------------------------------------------------------- runs
@pytest.fixture(scope="module")
def reward_model(tmp_path_factory):
    """A reward model with an easily learnable preference, built here: a Llama scorer (the policy's tokenizer) whose
    blocks are switched off, so the score is a fixed function of the last token: w · RMSNorm(embedding)."""
    from transformers import AutoConfig, LlamaForSequenceClassification

    path = tmp_path_factory.mktemp("reward") / "last_token_scorer"
    config = AutoConfig.from_pretrained(models.tiny_model_dir())
    config.num_labels = 1
    torch.manual_seed(0)
    scorer = LlamaForSequenceClassification(config)
    with torch.no_grad():
        for layer in scorer.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        scorer.score.weight.copy_(3 * torch.randn_like(scorer.score.weight) / config.hidden_size ** 0.5)
    scorer.save_pretrained(path)
    models.load_tokenizer(compose_config([]).model).save_pretrained(path)
    return path


def ppo_run(tmp_path, reward_model, *overrides):
    out = tmp_path / "policy"
    run(compose_config(["trainer=ppo", f"trainer.rl.reward_model_path={reward_model}", f"output_dir={out}",
                        *overrides]))
    return out, json.loads((out / "metrics.json").read_text())


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_reward_rises_over_seeds(tmp_path, reward_model, seed):
    """The mean reward of the policy's samples on held-out prompts rises for every seed; the KL to the reference
    stays finite and is reported."""
    from transformers import AutoModelForCausalLM, LlamaForCausalLM

    out, m = ppo_run(tmp_path, reward_model, f"training.seed={seed}", "trainer.rl.chunk_size=128",
                     "trainer.rl.max_new_tokens=2", "trainer.rl.stop_on_eos=false", "training.lr=3e-3",
                     "training.max_steps=6")
    assert m["eval_mean_reward_after"] > m["eval_mean_reward_before"] + 0.3, m
    assert all(torch.isfinite(torch.tensor(r["kl"])) for r in m["ppo_log"]) and m["ppo_iterations"] == 6
    for key in ("mean_reward", "kl", "clip_fraction", "value_loss", "entropy", "policy_loss"):
        assert key in m["ppo_log"][0]
    policy = AutoModelForCausalLM.from_pretrained(out)
    assert isinstance(policy, LlamaForCausalLM) and (out / "value_head.pt").is_file()


@pytest.mark.slow
def test_guide_workflow_reward_then_ppo(tmp_path):
    """The guide's workflow as two real runs: trainer=reward output_dir=X, then trainer=ppo
    trainer.rl.reward_model_path=X (tiny model, shipped data); the rollout reward rises over the iterations."""
    reward_dir = tmp_path / "reward_model"
    run(compose_config(["trainer=reward", f"output_dir={reward_dir}", "training.epochs=3", "training.batch_size=16",
                        "data.rejected_text_column=rejected"]))
    out, m = ppo_run(tmp_path, reward_dir, "training.batch_size=4", "trainer.rl.gamma=0.99", "trainer.rl.kl_coef=0.2",
                     "trainer.rl.chunk_size=64", "trainer.rl.max_new_tokens=16", "training.max_steps=10")
    rewards = [r["mean_reward"] for r in m["ppo_log"]]
    assert sum(rewards[-3:]) / 3 > sum(rewards[:3]) / 3, rewards
    assert m["eval_mean_reward_after"] > m["eval_mean_reward_before"], m
    assert m["warnings"] == [] and (out / "model.safetensors").is_file()


@pytest.mark.slow
def test_guide_lora_example_learns(tmp_path, reward_model):
    """The guide's "With LoRA" PPO example (batch 8, gamma 0.99, kl_coef 0.1, 4 PPO epochs, LoRA r 32); the
    reference is the policy with its adapter disabled."""
    out, m = ppo_run(tmp_path, reward_model, "training.batch_size=8", "trainer.rl.gamma=0.99", "trainer.rl.kl_coef=0.1",
                     "trainer.rl.num_ppo_epochs=4", "peft=lora", "peft.lora_r=32", "training.lr=1e-2",
                     "trainer.rl.max_new_tokens=2", "trainer.rl.stop_on_eos=false", "training.max_steps=6")
    assert (out / "adapter_config.json").is_file() and m["ppo_iterations"] == 6
    assert m["ppo_log"][0]["kl"] == pytest.approx(0.0, abs=1e-4)  # the first rollout: policy == reference
    assert m["eval_mean_reward_after"] > m["eval_mean_reward_before"] + 0.3, m


@pytest.mark.slow
def test_generation_settings_and_eos(tmp_path, reward_model):
    out, m = ppo_run(tmp_path, reward_model, "trainer.rl.chunk_size=16", "trainer.rl.max_new_tokens=4",
                     "trainer.rl.stop_on_eos=false", "trainer.rl.temperature=0.7", "training.max_steps=1")
    assert m["ppo_log"][0]["response_length"] == pytest.approx(4.0)


def test_reward_model_with_another_tokenizer(tmp_path):
    """The guide's own example scores a Llama policy with a BERT reward model: text is re-tokenized."""
    from tokenizers import Tokenizer, pre_tokenizers, trainers
    from tokenizers import models as tmodels
    from transformers import LlamaConfig, LlamaForSequenceClassification, PreTrainedTokenizerFast

    raw = Tokenizer(tmodels.WordLevel(unk_token="[UNK]"))
    raw.pre_tokenizer = pre_tokenizers.Whitespace()
    raw.train_from_iterator(["Question: What is the capital of Peru? Answer: Lima I do not know"],
                            trainers.WordLevelTrainer(special_tokens=["[PAD]", "[UNK]"]))
    other = PreTrainedTokenizerFast(tokenizer_object=raw, pad_token="[PAD]", unk_token="[UNK]")
    torch.manual_seed(0)
    scorer_model = LlamaForSequenceClassification(LlamaConfig(vocab_size=len(other), hidden_size=16, intermediate_size=32,
                                                              num_hidden_layers=1, num_attention_heads=2,
                                                              pad_token_id=0, num_labels=1))
    path = tmp_path / "bert_like"
    scorer_model.save_pretrained(path)
    other.save_pretrained(path)
    policy_tok = models.load_tokenizer(compose_config([]).model)
    scorer = models.RewardScorer(str(path), policy_tok, torch.device("cpu"), 64)
    assert not scorer.same_vocab
    seq = policy_tok("Question: What is the capital of Peru? Answer: Lima")["input_ids"]
    got = scorer([seq])
    batch = other(["Question: What is the capital of Peru? Answer: Lima"], return_tensors="pt")
    with torch.no_grad():
        expected = scorer_model(**batch).logits.mean(-1)
    assert got.tolist() == pytest.approx(expected.tolist(), abs=1e-5)


@pytest.mark.slow
def test_reward_path_that_is_not_a_scorer_is_refused_before_training(tmp_path):
    from autotrain_hydra.schema.errors import ConfigError

    with pytest.raises(ConfigError, match=r"Reward model not found: .* is not a sequence-classification model"):
        run(compose_config(["trainer=ppo", f"trainer.rl.reward_model_path={models.tiny_model_dir()}",
                            f"output_dir={tmp_path}/o"]))
    assert not (tmp_path / "o").exists()
