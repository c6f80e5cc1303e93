"""Reward functions shipped for ``trainer=grpo`` (``trainer.grpo.reward_funcs``).

Each has TRL's reward-function signature: ``f(prompts, completions, **kwargs) -> list[float]``, one reward per
completion, where ``kwargs`` holds the data's other columns (one value per completion) and TRL's extras
(``completion_ids``, ``trainer_state``, ...). The settings after ``completions`` are keyword arguments: give them with
Hydra's ``_partial_`` mapping::

    trainer:
      grpo:
        reward_funcs:
          - autotrain_hydra.rewards.has_number                # a dotted path: the defaults
          - _target_: autotrain_hydra.rewards.length_target   # a mapping: with arguments
            _partial_: true
            target: 40
          - ./my_rewards.py:brevity                           # a function of your own, in a file

The completions of ``trainer=grpo`` are text (prompts given as chat messages are rendered through the chat template
first). A completion given as a list of chat messages (TRL's conversational form) is read as its last message.

Light module: the standard library only (validation imports it to check the signatures).
"""

from __future__ import annotations

import re
from typing import Any, List, Optional, Sequence, Union


def completion_text(completion: Any) -> str:
    """A completion as text: a string, or a conversational completion's last message."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list) and completion and isinstance(completion[-1], dict):
        return str(completion[-1].get("content") or "")
    return "" if completion is None else str(completion)


def has_number(prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any) -> List[float]:
    """1.0 when the completion contains a number (a digit), else 0.0: a format reward for prompts that ask for a
    number (the built-in arithmetic prompts come with it)."""
    return [1.0 if re.search(r"\d", completion_text(c)) else 0.0 for c in completions]


def regex_match(prompts: Sequence[Any], completions: Sequence[Any], pattern: str = r"\S", full: bool = False,
                **kwargs: Any) -> List[float]:
    """1.0 when the completion matches the regular expression ``pattern`` (``re.search``; with ``full=true`` the
    whole completion, stripped, must match: ``re.fullmatch``), else 0.0. A format reward, e.g.
    ``pattern: '<answer>.*</answer>'``."""
    compiled = re.compile(pattern, re.DOTALL)
    match = compiled.fullmatch if full else compiled.search
    return [1.0 if match(completion_text(c).strip() if full else completion_text(c)) else 0.0 for c in completions]


def length_target(prompts: Sequence[Any], completions: Sequence[Any], target: int = 100, unit: str = "chars",
                  **kwargs: Any) -> List[float]:
    """How close the completion's length is to ``target``: 1 − |length − target| / max(length, target), in [0, 1]
    (1.0 at the target). ``unit``: ``chars`` (characters) or ``words`` (whitespace-separated)."""
    if unit not in ("chars", "words"):
        raise ValueError(f"length_target: unit must be chars or words, not {unit!r}")
    out = []
    for c in completions:
        text = completion_text(c)
        n = len(text) if unit == "chars" else len(text.split())
        out.append(1.0 - abs(n - target) / max(n, target, 1))
    return out


def keywords(prompts: Sequence[Any], completions: Sequence[Any], words: Union[str, Sequence[str]] = (),
             case_sensitive: bool = False, **kwargs: Any) -> List[float]:
    """The fraction of ``words`` (a word or a list) that the completion contains, in [0, 1]."""
    wanted = [words] if isinstance(words, str) else list(words)
    if not wanted:
        raise ValueError("keywords: give the words to look for (words: [...])")
    if not case_sensitive:
        wanted = [w.lower() for w in wanted]
    out = []
    for c in completions:
        text = completion_text(c) if case_sensitive else completion_text(c).lower()
        out.append(sum(w in text for w in wanted) / len(wanted))
    return out


def reference_match(prompts: Sequence[Any], completions: Sequence[Any], column: str = "answer",
                    mode: str = "contains", case_sensitive: bool = False, **kwargs: Any) -> List[Optional[float]]:
    """1.0 when the completion matches the reference answer in the data's column ``column`` (default ``answer``),
    else 0.0. ``mode``: ``contains`` (the reference appears in the completion), ``exact`` (the completion, stripped,
    is the reference) or ``number`` (the last number in the completion equals the reference's). A row without a
    reference gets None (TRL leaves it out of the mean)."""
    if mode not in ("contains", "exact", "number"):
        raise ValueError(f"reference_match: mode must be contains, exact or number, not {mode!r}")
    if column not in kwargs:
        raise KeyError(f"reference_match: the data have no column {column!r} (set column: to the column that holds "
                       "the reference answers)")
    out: List[Optional[float]] = []
    for c, ref in zip(completions, kwargs[column]):
        if ref is None:
            out.append(None)
            continue
        text, ref = completion_text(c).strip(), str(ref).strip()
        if not case_sensitive:
            text, ref = text.lower(), ref.lower()
        if mode == "exact":
            out.append(1.0 if text == ref else 0.0)
        elif mode == "contains":
            out.append(1.0 if ref and ref in text else 0.0)
        else:
            numbers = re.findall(r"-?\d+(?:\.\d+)?", text)
            expected = re.findall(r"-?\d+(?:\.\d+)?", ref)
            out.append(1.0 if numbers and expected and float(numbers[-1]) == float(expected[-1]) else 0.0)
    return out


SHIPPED = (has_number, regex_match, length_target, keywords, reference_match)
# the data columns a shipped function reads, from its keyword arguments (checked against the data before load)
COLUMNS_READ = {reference_match: lambda kwargs: [kwargs.get("column", "answer")]}
# the argument values a shipped function accepts (checked before load)
CHOICES = {length_target: {"unit": ("chars", "words")}, reference_match: {"mode": ("contains", "exact", "number")}}
