"""Regenerate the shipped sample data (autotrain_hydra/assets/data/*.jsonl) deterministically.

The samples are small and learnable (templated facts and arithmetic), so a tiny random model shows a falling
loss within a few dozen steps. Run: python scripts/make_sample_data.py
"""

import json
import random
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "autotrain_hydra" / "assets" / "data"
COLORS = ["red", "blue", "green", "yellow", "purple", "orange", "black", "white"]
THINGS = ["apple", "sky", "leaf", "sun", "grape", "carrot", "night", "snow"]
THING_COLOR = dict(zip(THINGS, ["red", "blue", "green", "yellow", "purple", "orange", "black", "white"]))
ANIMALS = {"cat": "meow", "dog": "woof", "cow": "moo", "duck": "quack", "sheep": "baa", "owl": "hoot"}
CAPITALS = {"France": "Paris", "Italy": "Rome", "Spain": "Madrid", "Japan": "Tokyo", "Egypt": "Cairo",
            "Peru": "Lima", "Kenya": "Nairobi", "Norway": "Oslo"}


def qa_pairs(rng):
    pairs = []
    for a in range(1, 10):
        for b in range(1, 10):
            pairs.append((f"What is {a} plus {b}?", f"{a} plus {b} is {a + b}."))
    for t, c in THING_COLOR.items():
        pairs.append((f"What color is the {t}?", f"The {t} is {c}."))
    for an, s in ANIMALS.items():
        pairs.append((f"What does the {an} say?", f"The {an} says {s}."))
    for co, ca in CAPITALS.items():
        pairs.append((f"What is the capital of {co}?", f"The capital of {co} is {ca}."))
    rng.shuffle(pairs)
    return pairs


EVASIVE = ["I do not know.", "I am not sure about that.", "Maybe ask someone else.", "That is hard to say.",
           "I would rather not answer."]


def write(name, rows):
    with open(OUT / name, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


def main():
    rng = random.Random(1234)
    OUT.mkdir(parents=True, exist_ok=True)
    pairs = qa_pairs(rng)  # 111 pairs
    train, valid = pairs[:96], pairs[96:]
    system = "You are a helpful assistant. Answer in one short sentence."

    def chat(q, a):
        return {"messages": [{"role": "system", "content": system}, {"role": "user", "content": q},
                             {"role": "assistant", "content": a}]}

    write("chat.jsonl", [chat(q, a) for q, a in train])
    write("chat_valid.jsonl", [chat(q, a) for q, a in valid])
    write("text.jsonl", [{"text": f"Question: {q} Answer: {a}"} for q, a in train])
    write("text_valid.jsonl", [{"text": f"Question: {q} Answer: {a}"} for q, a in valid])
    # Preference pairs: the chosen response answers the question, the rejected one evades it (a property a tiny
    # model can learn, so DPO/ORPO margins and reward accuracy rise measurably on the held-out pairs).
    def pair(q, a):
        return {"prompt": f"Question: {q}\nAnswer:", "chosen": f" {a}", "rejected": f" {rng.choice(EVASIVE)}"}

    write("preference.jsonl", [pair(q, a) for q, a in train])
    write("preference_valid.jsonl", [pair(q, a) for q, a in valid])
    write("prompts.jsonl", [{"prompt": f"Question: {q}\nAnswer:"} for q, _ in train])
    write("prompts_valid.jsonl", [{"prompt": f"Question: {q}\nAnswer:"} for q, _ in valid])


if __name__ == "__main__":
    main()
