"""Knowledge distillation: the KD loss by hand, a student pulled toward a trained teacher (logit mode), a teacher
with another vocabulary (sequence-level mode), and the preference trainers with the term on chosen responses."""

import json
import math

import pytest
import torch

from autotrain_hydra import data, models
from autotrain_hydra.compat.hydra import compose_config
from autotrain_hydra.features import distillation
from autotrain_hydra.run import run

FAST = ["training.batch_size=8", "training.logging_steps=2", "training.warmup_ratio=0"]
TEACHER_TEXT = [f"Question: What is {a} plus {b}? Answer: banana kiwi banana kiwi banana." for a in range(1, 10)
                for b in range(1, 10)]


def train(out, *overrides):
    cfg = compose_config([*FAST, f"output_dir={out}", *overrides])
    run(cfg, overrides=list(overrides))
    return json.loads((out / "metrics.json").read_text())


# ----------------------------------------------------------------------------------------------- the loss
def test_kd_loss_equals_hand_computed_kl():
    s = [[1.0, 2.0, 0.5], [0.0, 0.0, 3.0]]
    t = [[2.0, 0.0, 1.0], [9.0, -9.0, 0.0]]
    temperature = 2.0

    def softmax(xs):
        e = [math.exp(x / temperature) for x in xs]
        return [v / sum(e) for v in e]

    p, q = softmax(t[0]), softmax(s[0])
    expected = sum(pi * math.log(pi / qi) for pi, qi in zip(p, q)) * temperature ** 2
    got = distillation.kd_loss(torch.tensor([s]), torch.tensor([t]), torch.tensor([[1, 0]]), temperature)
    assert float(got) == pytest.approx(expected, rel=1e-5)  # the masked second position does not count
    # two positions: the mean of the two KLs
    p2, q2 = softmax(t[1]), softmax(s[1])
    second = sum(pi * math.log(pi / qi) for pi, qi in zip(p2, q2)) * temperature ** 2
    both = distillation.kd_loss(torch.tensor([s]), torch.tensor([t]), torch.tensor([[1, 1]]), temperature)
    assert float(both) == pytest.approx((expected + second) / 2, rel=1e-5)


def test_kd_loss_zero_for_the_same_distribution_and_padded_teacher_vocabulary():
    s = torch.randn(2, 5, 7)
    padded = torch.cat([s, torch.full((2, 5, 3), 50.0)], -1)  # a teacher whose output layer has 3 unused rows
    assert float(distillation.kd_loss(s, padded, torch.ones(2, 5), 3.0)) == pytest.approx(0.0, abs=1e-5)
    assert float(distillation.kd_loss(s, s.flip(-1), torch.ones(2, 5), 3.0)) > 0.1


def test_prompt_rendering_rules():
    tok = models.load_tokenizer(compose_config([]).model)
    chat = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi?"},
            {"role": "assistant", "content": "Hello."}]
    prompt = data.prompt_of(chat)
    assert prompt == chat[:2]
    assert distillation.render_prompt(tok, None, prompt).endswith("<|im_start|>assistant\n")  # its chat template
    assert distillation.render_prompt(tok, "Q: {input}\nA:", prompt) == "Q: Hi?\nA:"  # the last user message
    assert distillation.render_prompt(tok, "Q: {input}\nA:", "plain") == "Q: plain\nA:"
    assert distillation.render_prompt(tok, "Q: {input}\\nA:", "plain") == "Q: plain\nA:"  # as typed in a shell
    seq = distillation.student_sequence(tok, "Q: {input}\nA:", "2+2?", " 4")
    answer = [i for i, m in zip(seq["input_ids"], seq["labels_mask"]) if m]
    assert tok.decode(answer) == " 4</s>"


# ----------------------------------------------------------------------------------------------- logit mode
@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    """The tiny model trained on a distinctive distribution (every answer is 'banana kiwi ...')."""
    root = tmp_path_factory.mktemp("teacher")
    data = root / "teacher.jsonl"
    data.write_text("".join(json.dumps({"text": t}) + "\n" for t in TEACHER_TEXT))
    train(root / "model", "trainer=generic", f"data.path={data}", "training.lr=5e-3", "training.epochs=6",
          "training.block_size=64")
    return root / "model"


def held_out_kl(student_dir, teacher_dir):
    """Mean per-token KL(teacher ‖ student) at T=1 on the sample's held-out texts."""
    from transformers import AutoModelForCausalLM

    from autotrain_hydra.data import load_split
    from autotrain_hydra.paths import ASSETS_DIR

    tok = models.load_tokenizer(compose_config([]).model)
    texts = list(load_split(str(ASSETS_DIR / "data" / "text_valid.jsonl"), "train")["text"])
    batch = tok(texts, return_tensors="pt", padding=True)
    with torch.no_grad():
        s = AutoModelForCausalLM.from_pretrained(student_dir)(**batch).logits
        t = AutoModelForCausalLM.from_pretrained(teacher_dir)(**batch).logits
    return float(distillation.kd_loss(s, t, batch["attention_mask"], 1.0))


@pytest.mark.slow
@pytest.mark.parametrize("peft", [["training.lr=5e-3"], ["peft=lora", "peft.lora_r=32", "training.lr=1e-2"]],
                         ids=["full", "lora"])
def test_student_moves_toward_the_teacher(tmp_path, teacher, peft):
    """The guide's generic example (with and without --peft --lora-r 32): the distilled student ends closer to the
    teacher than the same student trained without distillation."""
    common = ["trainer=generic", "training.epochs=3", "training.block_size=64", *peft]
    lora = "peft=lora" in peft
    if lora:
        common.append("peft.merge_adapter=true")
    plain = train(tmp_path / "plain", *common)
    kd = train(tmp_path / "kd", *common, "features=[distillation]", f"distillation.teacher_model={teacher}")
    assert "distillation_mode" not in plain and kd["distillation_mode"] == "logits"
    assert kd["notes"][0].startswith("knowledge distillation: logit mode")
    sub = "merged" if lora else ""
    kl_plain = held_out_kl(tmp_path / "plain" / sub, teacher)
    kl_kd = held_out_kl(tmp_path / "kd" / sub, teacher)
    kl_base = held_out_kl(models.tiny_model_dir(), teacher)
    # LoRA on the random tiny model moves it less (embeddings and head are not adapted): a smaller, real gap
    assert kl_kd < (kl_plain - 0.02 if lora else 0.8 * kl_plain) and kl_kd < kl_base, (kl_base, kl_plain, kl_kd)
    distill = [v for _, v in kd["history"]["distill"]]
    assert distill[-1] < distill[0]
    assert (tmp_path / "kd" / "loss.png").is_file()


@pytest.mark.slow
@pytest.mark.parametrize("trainer", ["dpo", "orpo"])
def test_preference_trainers_distil_on_chosen_responses(tmp_path, teacher, trainer):
    m = train(tmp_path / "out", f"trainer={trainer}", "training.epochs=2", "training.lr=5e-3",
              "features=[distillation]", f"distillation.teacher_model={teacher}", "distillation.alpha=0.5")
    assert m["distillation_mode"] == "logits"
    distill = [v for _, v in m["history"]["distill"]]
    assert len(distill) >= 3 and distill[-1] < 0.8 * distill[0], distill
    assert "eval_logp_margin_after" in m  # the preference evaluation still runs


# ----------------------------------------------------------------------------------------------- sequence mode
@pytest.fixture(scope="module")
def other_vocab_teacher(tmp_path_factory):
    """A tiny model with another tokenizer (384 tokens), trained to answer 'banana kiwi ...'."""
    root = tmp_path_factory.mktemp("teacher384")
    models.build_tiny(root / "base", vocab_size=384)
    data = root / "teacher.jsonl"
    data.write_text("".join(json.dumps({"text": t}) + "\n" for t in TEACHER_TEXT))
    train(root / "model", "trainer=generic", f"model.name={root / 'base'}", f"data.path={data}", "training.lr=5e-3",
          "training.epochs=6", "training.block_size=64")
    return root / "model"


def answer_nll(model_dir, rows, template):
    from transformers import AutoModelForCausalLM

    tok = models.load_tokenizer(compose_config([]).model)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    total = 0.0
    with torch.no_grad():
        for row in rows:
            seq = distillation.student_sequence(tok, template, row["prompt"], row["response"])
            ids = torch.tensor([seq["input_ids"]])
            total += float(distillation.response_nll(model(input_ids=ids).logits, ids,
                                                     torch.tensor([seq["labels_mask"]])))
    return total / len(rows)


@pytest.mark.slow
def test_sequence_level_mode_with_another_vocabulary(tmp_path, other_vocab_teacher):
    template = ["distillation.teacher_prompt_template='Question: {input} Answer:'",  # quoted for Hydra: braces
                "distillation.student_prompt_template='Q: {input} A:'"]
    common = ["trainer=generic", "training.epochs=2", "training.block_size=64", "training.lr=5e-3"]
    kd = train(tmp_path / "kd", *common, "features=[distillation]", f"distillation.teacher_model={other_vocab_teacher}",
               "distillation.max_new_tokens=12", *template)
    train(tmp_path / "plain", *common)
    assert kd["distillation_mode"] == "sequence" and "sequence-level mode" in kd["notes"][0]
    rows = [json.loads(line) for line in (tmp_path / "kd" / "distillation" / "teacher_responses.jsonl").open()]
    assert len(rows) == kd["distillation_teacher_answers"] == 96  # one answer per training row
    assert sum("banana" in r["response"] for r in rows) > len(rows) // 2, rows[:3]  # the teacher's own style
    answers = rows[:16]  # the distilled student learned the teacher's answers; the plain one did not
    assert answer_nll(tmp_path / "kd", answers, "Q: {input} A:") < answer_nll(tmp_path / "plain", answers,
                                                                             "Q: {input} A:") - 0.5


@pytest.mark.slow
def test_sft_chat_sequence_mode_uses_the_chat_template(tmp_path, other_vocab_teacher):
    m = train(tmp_path / "kd", "trainer=sft", "training.epochs=1", "features=[distillation]",
              f"distillation.teacher_model={other_vocab_teacher}", "distillation.max_new_tokens=6")
    assert m["distillation_mode"] == "sequence"
    row = json.loads((tmp_path / "kd" / "distillation" / "teacher_responses.jsonl").open().readline())
    assert row["prompt"][-1]["role"] == "user"  # the conversation up to its answer
    assert "distill" in m["history"]


@pytest.mark.slow
def test_dpo_sequence_mode_distils_teacher_answers_to_the_prompts(tmp_path, other_vocab_teacher):
    m = train(tmp_path / "kd", "trainer=dpo", "training.epochs=2", "training.lr=5e-3", "features=[distillation]",
              f"distillation.teacher_model={other_vocab_teacher}", "distillation.max_new_tokens=8")
    assert m["distillation_mode"] == "sequence"
    rows = [json.loads(line) for line in (tmp_path / "kd" / "distillation" / "teacher_responses.jsonl").open()]
    assert rows[0]["prompt"].startswith("Question:")  # the prompt column
    distill = [v for _, v in m["history"]["distill"]]
    assert distill[-1] < distill[0], distill


@pytest.mark.slow
def test_teacher_in_lower_precision_frozen_and_in_eval_mode(tmp_path, teacher):
    cfg = compose_config(["features=[distillation]", f"distillation.teacher_model={teacher}",
                          "distillation.teacher_dtype=bf16"])
    t = distillation.load_teacher(cfg)
    assert next(t.parameters()).dtype == torch.bfloat16
    assert not t.training and not any(p.requires_grad for p in t.parameters())
    m = train(tmp_path / "kd", "trainer=generic", "training.epochs=1", "training.block_size=64",
              "features=[distillation]", f"distillation.teacher_model={teacher}", "distillation.teacher_dtype=bf16")
    assert m["distillation_mode"] == "logits" and math.isfinite(m["train_loss"])
