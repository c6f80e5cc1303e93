"""This process among the others: its rank in a launched run, and SIGTERM (scancel, a job's time limit, kill)
handled as Ctrl-C, so that one clean-up path serves both. Standard library only."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from typing import Any, Iterator, Tuple


def rank_and_world() -> Tuple[int, int]:
    """This process's global rank and the number of processes (0, 1 outside a launched run)."""
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def is_main_process() -> bool:
    return rank_and_world()[0] == 0


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """In the block, SIGTERM raises KeyboardInterrupt as Ctrl-C does; outside the main thread (where Python cannot
    set handlers) nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
