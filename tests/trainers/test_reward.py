"""trainer=reward: a sequence-classification scorer that ranks held-out pairs, with label smoothing and several heads."""

import pytest
import torch

from tests.helpers import train_pairs as train


@pytest.mark.slow
@pytest.mark.parametrize("peft,labels", [("none", 1), ("lora", 1), ("none", 3)])
def test_reward_model_scores_held_out_pairs(tmp_path, peft, labels):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, LlamaForSequenceClassification

    lr = ["training.lr=5e-3"] if peft == "lora" else []
    out, m, _ = train(tmp_path, "trainer=reward", f"peft={peft}", f"trainer.num_labels={labels}", *lr)
    assert m["eval_accuracy"] >= 0.9, m
    assert m["eval_margin"] > 0
    scorer = AutoModelForSequenceClassification.from_pretrained(out)
    assert isinstance(scorer, LlamaForSequenceClassification) and scorer.config.num_labels == labels
    assert not scorer.can_generate()  # a scorer, not a generator
    tok = AutoTokenizer.from_pretrained(out)
    good = tok("Question: What is the capital of Peru?\nAnswer: The capital of Peru is Lima.</s>",
               return_tensors="pt")
    bad = tok("Question: What is the capital of Peru?\nAnswer: I do not know.</s>", return_tensors="pt")
    with torch.no_grad():
        assert scorer(**good).logits.shape == (1, labels)
        assert scorer(**good).logits.mean() > scorer(**bad).logits.mean()
    if peft == "lora":
        assert (out / "adapter" / "adapter_config.json").is_file()


def test_label_smoothing_formula():
    from autotrain_hydra.trainers.reward import pairwise_loss

    chosen, rejected = torch.tensor([[2.0], [0.5]]), torch.tensor([[1.0], [0.0]])
    d = chosen - rejected
    for eps in (0.0, 0.1, 0.3):
        expected = (-(1 - eps) * torch.nn.functional.logsigmoid(d) - eps * torch.nn.functional.logsigmoid(-d)).mean()
        assert pairwise_loss(chosen, rejected, eps) == pytest.approx(expected.item())
    assert pairwise_loss(chosen, rejected, 0.1) != pytest.approx(pairwise_loss(chosen, rejected, 0.0).item())
    # several heads: the mean of each head's loss
    two = pairwise_loss(torch.tensor([[2.0, 0.0]]), torch.tensor([[1.0, 1.0]]))
    per_head = -torch.nn.functional.logsigmoid(torch.tensor([1.0, -1.0]))
    assert two == pytest.approx(per_head.mean().item())


@pytest.mark.slow
def test_label_smoothing_changes_training_loss(tmp_path):
    _, plain, _ = train(tmp_path / "a", "trainer=reward", "training.max_steps=3")
    _, smooth, _ = train(tmp_path / "b", "trainer=reward", "training.max_steps=3", "trainer.label_smoothing=0.2")
    assert smooth["first_train_loss"] != pytest.approx(plain["first_train_loss"], abs=1e-6)

