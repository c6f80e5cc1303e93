"""Writes benchmarks/data/chat_lengths.jsonl: 512 chats whose token lengths (tiny tokenizer) spread from about 16 to
512, log-normal like real chat data (median ~ 240, a long tail). Deterministic; run once, the file is committed."""

import json
import random
from pathlib import Path

from autotrain_hydra.paths import ASSETS_DIR

OUT = Path(__file__).parent / "data" / "chat_lengths.jsonl"


def main(n: int = 512, seed: int = 0) -> None:
    rng = random.Random(seed)
    words = []
    for line in (ASSETS_DIR / "data" / "text.jsonl").read_text().splitlines():
        words += json.loads(line)["text"].split()
    rows = []
    for _ in range(n):
        length = int(min(400, max(8, rng.lognormvariate(5.4, 0.65))))  # tokens, roughly
        n_words = max(3, int(length / 1.25))  # the tiny tokenizer: about 1.25 tokens a word
        question = " ".join(rng.choice(words) for _ in range(max(2, n_words // 4)))
        answer = " ".join(rng.choice(words) for _ in range(max(1, n_words - n_words // 4)))
        rows.append({"messages": [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]})
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text("".join(json.dumps(r) + "\n" for r in rows))


if __name__ == "__main__":
    main()
