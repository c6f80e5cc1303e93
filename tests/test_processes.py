"""This process among the others: its rank, and SIGTERM handled as Ctrl-C."""

import os
import signal

import pytest

from autotrain_hydra.processes import is_main_process, rank_and_world, sigterm_as_interrupt


def test_rank_and_world(monkeypatch):
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert rank_and_world() == (0, 1) and is_main_process()
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("WORLD_SIZE", "4")
    assert rank_and_world() == (3, 4) and not is_main_process()


def test_sigterm_raises_keyboard_interrupt_in_the_block_only():
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt, match="signal 15"):
        with sigterm_as_interrupt():
            os.kill(os.getpid(), signal.SIGTERM)
            signal.sigtimedwait([], 1) if hasattr(signal, "sigtimedwait") else None
    assert signal.getsignal(signal.SIGTERM) == before


def test_a_swallowed_interrupt_still_stops_the_loops_that_check():
    """A KeyboardInterrupt raised where Python ignores it (a weakref callback, a finaliser) is lost; the stop request
    stays set for the block, so a training loop stops at its next step (bug: a stopped sweep worker trained on)."""
    from autotrain_hydra.processes import stop_requested

    assert not stop_requested()
    with sigterm_as_interrupt():
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            signal.sigtimedwait([], 1) if hasattr(signal, "sigtimedwait") else None
        except KeyboardInterrupt:
            pass  # swallowed, as "Exception ignored in ..." does
        assert stop_requested()
    assert not stop_requested()
