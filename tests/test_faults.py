"""Faults at the unit level: a training round cut short, and a slow round under the session cap.

The session's worker (explorer/live.py) trains in its own thread and calls no Streamlit, so
Streamlit's RerunException and StopException cannot land inside a round; if a round were cut
between two runs anyway (any exception), the next round brings every run back to one step."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from streamlit.runtime.scriptrunner_utils.exceptions import RerunException, StopException

from explorer import live
from explorer.data import load_toy
from explorer.training import Run, RunConfig
from explorer.ui.capacity import TrainingSlots

SMALL = RunConfig(batch_size=8, depth=2, width=4, seed=5)


@pytest.fixture(scope="module")
def toy():
    return load_toy()


def _runs(toy) -> dict[str, Run]:
    return {
        "A": Run(dataclasses.replace(SMALL, loss_id="ce"), toy),
        "B": Run(dataclasses.replace(SMALL, loss_id="focal", loss_params={"alpha": 0.5, "gamma": 2.0}, class_weights=(1.0, 2.0, 3.0, 4.0)), toy),
    }


def _alone(run: Run, steps: int) -> tuple[float, ...]:
    alone = Run(run.config, run.data)
    alone.advance(steps, evaluate_every=None)
    return alone.state.loss_values


def _whole(run: Run) -> None:
    state = run.state
    assert state.loss_steps == tuple(range(1, state.step + 1)), "the history has a gap or a repeat"
    assert len(state.loss_values) == state.step


def test_the_training_worker_never_calls_streamlit(toy):
    """The worker trains in its own thread: a Streamlit call there would act on no page, or on
    whichever page ran last. explorer/live.py imports nothing of Streamlit, directly or through
    the page's modules."""
    tree = ast.parse(Path(live.__file__).read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    assert not [name for name in imported if name.startswith(("streamlit", "explorer.ui"))], imported
    runs = _runs(toy)
    live.advance_in_lockstep(runs, 3, max_steps=100, evaluate_every=2)
    assert {r.state.step for r in runs.values()} == {3}


@pytest.mark.parametrize("exception", [RerunException(None), StopException()], ids=["rerun", "stop"])
def test_a_round_cut_between_two_runs_leaves_them_whole_and_the_next_round_brings_them_to_one_step(toy, exception):
    runs = _runs(toy)
    live.advance_in_lockstep(runs, 2, max_steps=100, evaluate_every=None)

    # The round is cut after run A trained and before run B did.
    with mock.patch.object(runs["B"], "advance", side_effect=exception), pytest.raises(type(exception)):
        live.advance_in_lockstep(runs, 3, max_steps=100, evaluate_every=None)
    assert runs["A"].state.step == 5 and runs["B"].state.step == 2
    for run in runs.values():
        _whole(run)

    # The next round brings every run to one target step, the slowest run's step plus the round's
    # steps (B trains 4 steps, A only 1), then both go on together.
    live.advance_in_lockstep(runs, 4, max_steps=100, evaluate_every=None)
    assert {r.state.step for r in runs.values()} == {6}
    live.advance_in_lockstep(runs, 2, max_steps=100, evaluate_every=None)
    assert {r.state.step for r in runs.values()} == {8}
    for run in runs.values():
        _whole(run)
        np.testing.assert_allclose(run.state.loss_values, _alone(run, 8), rtol=1e-6)


def test_a_slot_is_not_taken_back_while_its_tick_trains():
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

    # A round that raised (a rerun, the session closing) leaves no mark behind.
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
