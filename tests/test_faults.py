"""Faults at the unit level: a slow round of steps under the session cap, and an exception in the
middle of Run.advance. (A round cut between two runs: tests/test_live.py.)

Training runs in the session's worker thread (explorer.live), never in a script run, so a
Streamlit rerun or a closed session (RerunException, StopException) cannot cut a round."""

from __future__ import annotations

from unittest import mock

import numpy as np
import pytest
from streamlit.runtime.scriptrunner_utils.exceptions import StopException

from explorer.data import load_toy
from explorer.live import TrainingSlots
from explorer.training import Run, RunConfig

SMALL = RunConfig(batch_size=8, depth=2, width=4, seed=5)


@pytest.fixture(scope="module")
def toy():
    return load_toy()


def _whole(run: Run) -> None:
    state = run.state
    assert state.loss_steps == tuple(range(1, state.step + 1)), "the history has a gap or a repeat"
    assert len(state.loss_values) == state.step


def test_a_slot_is_not_taken_back_while_its_round_trains():
    clock = type("Clock", (), {"now": 0.0, "__call__": lambda self: self.now})()
    slots = TrainingSlots(1, stale_seconds=10, clock=clock)
    assert slots.acquire("slow") == 0
    with slots.training("slow"):  # tracing the step on a loaded CPU: longer than the stale time
        clock.now = 30
        assert slots.acquire("other") == 1, "a slot was taken from a session while it trained"
    clock.now = 35  # the slow tick ended at 30: 5 s ago
    assert slots.acquire("other") == 1
    assert slots.acquire("slow") == 0
    clock.now = 46  # "slow" stopped ticking (tab closed) 11 s ago
    assert slots.acquire("other") == 0

    # A tick that raised (a rerun, the session closing) leaves no mark behind.
    clock.now = 50
    with pytest.raises(StopException), slots.training("other"):
        raise StopException()
    clock.now = 61
    assert slots.acquire("slow") == 0, "the raising tick kept its slot beyond the stale time"


def test_an_exception_in_the_middle_of_advance_keeps_the_steps_the_weights_took(toy):
    run = Run(SMALL, toy)
    real_step, calls = run._train_step, []

    def failing_third_call(*arguments):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt  # anything that ends the loop between two traced calls
        return real_step(*arguments)

    with mock.patch.object(run, "_train_step", failing_third_call), pytest.raises(KeyboardInterrupt):
        run.advance(9, evaluate_every=None, steps_per_call=2)
    _whole(run)
    assert run.state.step == 4
    twin = Run(SMALL, toy)
    twin.advance(4, evaluate_every=None)
    assert run.state.loss_values == twin.state.loss_values
    for mine, theirs in zip(run.model.get_weights(), twin.model.get_weights()):
        np.testing.assert_array_equal(mine, theirs)
