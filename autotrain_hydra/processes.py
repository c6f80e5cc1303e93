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


_STOP = threading.Event()  # set by SIGTERM in a sigterm_as_interrupt block


def stop_requested() -> bool:
    """Whether a SIGTERM asked this process to stop. The KeyboardInterrupt it raised can be swallowed when it lands
    in a finaliser or a weakref callback ("Exception ignored in ..."): loops check this at safe points and stop."""
    return _STOP.is_set()


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """In the block, SIGTERM raises KeyboardInterrupt as Ctrl-C does (and ``stop_requested()`` becomes true, for the
    loops that check it); outside the main thread (where Python cannot set handlers) nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        _STOP.set()
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        _STOP.clear()
