"""The transformers internals autotrain_hydra relies on, all in one place (transformers 5.24).

- the text of ``utils.loading_report.log_state_dict_report``: a model whose weights a checkpoint lacks is reported as
  a table (``<Class> LOAD REPORT from: <path>``, a row ``<key> | MISSING`` per weight), as a warning on the
  ``transformers.modeling_utils`` logger. A reward model is a new head on a base: its head is missing by design, and
  the table (with its advice to train it) is printed on every reward run. ``new_head_said`` replaces exactly that
  report — every row a MISSING weight of the new head — by one line; any other report is kept as it is.

``tests/compat/test_transformers.py`` checks it against the installed transformers.
"""

from __future__ import annotations

import contextlib
import logging
import re
from typing import Callable, Iterator, List, Sequence

REPORTER = "transformers.modeling_utils"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_ROW = re.compile(r"^(\S+)\s*\|\s*([A-Z_]+)\b", re.M)


def report_rows(message: str) -> List[tuple]:
    """(key, status) of each row of a LOAD REPORT."""
    return [(k, s) for k, s in _ROW.findall(_ANSI.sub("", message)) if k != "Key"]


@contextlib.contextmanager
def new_head_said(heads: Sequence[str], say: Callable[[List[str]], None]) -> Iterator[None]:
    """While loading a base with a new head (module names ``heads``, e.g. ``score``): transformers' LOAD REPORT that
    lists only the head's weights as MISSING is not printed; ``say(keys)`` is called instead."""

    class NewHead(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            message = record.getMessage()
            if "LOAD REPORT" not in message:
                return True
            rows = report_rows(message)
            if rows and all(s == "MISSING" and k.split(".")[0] in heads for k, s in rows):
                say([k for k, _ in rows])
                return False
            return True

    logger = logging.getLogger(REPORTER)
    head_filter = NewHead()
    logger.addFilter(head_filter)
    try:
        yield
    finally:
        logger.removeFilter(head_filter)
