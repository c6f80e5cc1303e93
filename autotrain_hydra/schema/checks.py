"""The value-check language of the rules table: ``gt(0)``, ``between(0, 1)``, ``one_of(...)``, ``null_or_ge(1)``.

A ``Check`` says whether a value is acceptable and completes the sentence "<key> must be ...". Light module.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence, Tuple


@dataclass(frozen=True)
class Check:
    ok: Callable[[Any], bool]
    text: str  # "a number > 0" — completes "must be ..."
    choices: Tuple[Any, ...] = ()  # for one_of: the allowed values (did-you-mean suggestions)


def is_number(v: Any) -> bool:
    """An int or a finite float: ``inf`` and ``nan`` (``training.epochs=inf``, ``training.lr=nan``) pass no check."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def non_finite(v: Any) -> bool:
    """``inf``, ``-inf`` or ``nan``: a float no run can use."""
    return isinstance(v, float) and not math.isfinite(v)


def gt(lo: float) -> Check:
    return Check(lambda v: is_number(v) and v > lo, f"a number > {lo:g}")


def ge(lo: float) -> Check:
    return Check(lambda v: is_number(v) and v >= lo, f"a number >= {lo:g}")


def between(lo: float, hi: float, hi_open: bool = False) -> Check:
    if hi_open:
        return Check(lambda v: is_number(v) and lo <= v < hi, f"in [{lo:g}, {hi:g})")
    return Check(lambda v: is_number(v) and lo <= v <= hi, f"in [{lo:g}, {hi:g}]")


def open_interval(lo: float, hi: float, nullable: bool = False) -> Check:
    text = f"in ({lo:g}, {hi:g})"
    if nullable:
        return Check(lambda v: v is None or (is_number(v) and lo < v < hi), "null or " + text)
    return Check(lambda v: is_number(v) and lo < v < hi, text)


def one_of(choices: Sequence[Any]) -> Check:
    shown = ", ".join("null" if c is None else str(c) for c in choices)
    return Check(lambda v: v in choices, f"one of {shown}", tuple(choices))


def list_of(choices: Sequence[Any]) -> Check:
    """A list whose every item is one of ``choices``."""
    return Check(lambda v: not isinstance(v, (str, bytes)) and hasattr(v, "__iter__") and all(x in choices for x in v),
                 f"a list of {', '.join(map(str, choices))}", tuple(choices))


def null_or_ge(lo: int) -> Check:
    """null (off, or: choose for me) or an integer >= lo."""
    return Check(lambda v: v is None or (isinstance(v, int) and not isinstance(v, bool) and v >= lo),
                 f"null or >= {lo}")


def steps_or_off() -> Check:
    return Check(lambda v: isinstance(v, int) and not isinstance(v, bool) and (v == -1 or v >= 1), "-1 (off) or >= 1")


def port_or_null() -> Check:
    return Check(lambda v: v is None or (isinstance(v, int) and 1 <= v <= 65535), "null or a port in [1, 65535]")


def null_bool_or_text(text: str) -> Check:
    return Check(lambda v: v is None or isinstance(v, (bool, str)), text)
