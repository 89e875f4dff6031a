"""The session's training worker (explorer/live.py): commands take effect between rounds, runs
move in lockstep and train exactly what a plain loop trains, the slot is held only while there is
work, and an abandoned worker stops by itself. Waits are on conditions (a thread's end, a step
reached), never sleeps; the conftest fixture checks that no worker thread outlives a test."""

from __future__ import annotations

import dataclasses
import threading

import numpy as np
import pytest
from test_training import small_config, tiny_dataset, weights_equal

from explorer import live
from explorer.training import Run
from explorer.ui.capacity import TrainingSlots

WAIT = 300  # seconds: a bound for a hung worker, far above what a loaded 2-core machine needs


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def data():
    return tiny_dataset()


def make_runs(data, losses=("ce", "dice", "focal")) -> dict[str, Run]:
    runs = {}
    for label, loss_id in zip("ABC", losses):
        first = next(iter(runs.values()), None)
        runs[label] = Run(small_config(loss_id=loss_id), data, initial_weights=first and first.initial_weights)
    return runs


def make_worker(runs, slots=None, session_id="s1", clock=None, page_open=None):
    options = {"clock": clock, "page_open": page_open}
    return live.LiveTrainer(runs, threading.RLock(), slots or TrainingSlots(2), session_id, **{k: v for k, v in options.items() if v})


def wait_until(worker: live.LiveTrainer, condition, timeout=WAIT) -> None:
    """Wait (on the worker's own condition variable) until `condition()` holds."""
    with worker._changed:
        assert worker._changed.wait_for(condition, timeout), "the worker never got there"


def wait_for_step(runs, step: int) -> None:
    """Poll the runs' published states, at most every 10 ms, until the slowest passed `step`."""
    done = threading.Event()
    while not done.wait(0.01):
        if min(r.state.step for r in runs.values()) >= step:
            return


def test_step_trains_exactly_n_steps_in_lockstep_as_a_plain_loop_does(data):
    runs, alone = make_runs(data), make_runs(data)
    worker = make_worker(runs)
    worker.step(4, live.Plan(max_steps=100, steps_per_round=5, evaluate_every=20))
    assert worker.wait_idle(WAIT)
    worker.step(3, live.Plan(max_steps=100, steps_per_round=5, evaluate_every=20))
    assert worker.wait_idle(WAIT)
    for label, run in runs.items():
        alone[label].advance(7, evaluate_every=None)  # the plain loop: one call
        assert run.state.loss_steps == tuple(range(1, 8)), label
        assert run.state.loss_values == alone[label].state.loss_values, f"run {label} trained other steps than a plain loop"
        assert weights_equal(run.model.get_weights(), alone[label].model.get_weights()), label
        assert run.state.latest.step == 7, "a Step ends with a snapshot of its last step"
    assert not worker.error and not worker.busy


def test_train_runs_in_rounds_to_the_last_step_then_frees_its_slot(data):
    runs = make_runs(data, losses=("ce", "tversky"))
    slots = TrainingSlots(1)
    worker = make_worker(runs, slots)
    worker.train(live.Plan(max_steps=12, steps_per_round=5, evaluate_every=5))
    assert worker.training
    assert worker.wait_idle(WAIT)
    for run in runs.values():
        assert run.state.step == 12 and len(run.state.loss_values) == 12
        assert [e.step for e in run.state.evaluations] == [0, 5, 10, 12], "snapshots every 5 steps and at the end"
    assert not worker.training and worker.place is None and slots.holders() == 0
    assert slots.acquire("someone else") == 0, "the slot was not given back"


def test_the_first_round_after_train_is_a_single_step_then_rounds_end_at_multiples(data, monkeypatch):
    """So the page shows training under way within one step's time of the click."""
    runs = make_runs(data, losses=("ce", "dice"))
    rounds = []
    advance = live.advance_in_lockstep

    def recorded(runs, steps, *args):
        rounds.append(steps)
        advance(runs, steps, *args)

    monkeypatch.setattr(live, "advance_in_lockstep", recorded)
    worker = make_worker(runs)
    worker.train(live.Plan(max_steps=11, steps_per_round=5, evaluate_every=50))
    # What the page's run after the click waits for: the first round, done (not merely started).
    assert worker.wait_for_a_round(WAIT), "no round was reported after Train"
    assert rounds and min(r.state.step for r in runs.values()) >= 1
    assert worker.wait_idle(WAIT)
    assert rounds == [1, 4, 5, 5], "one step, then rounds ending at multiples of 5 (the last one cut at step 11)"
    assert {r.state.step for r in runs.values()} == {11}
    worker.train(live.Plan(max_steps=13, steps_per_round=5, evaluate_every=50))  # Train again: one step first again
    assert worker.wait_idle(WAIT)
    assert rounds[4:] == [1, 3], "to 12, then to the next multiple of 5 (cut at the last step, 13)"
    assert {r.state.step for r in runs.values()} == {13}


def test_pause_stops_within_one_round_and_training_goes_on_from_there(data):
    runs = make_runs(data, losses=("ce", "dice"))
    worker = make_worker(runs)
    worker.train(live.Plan(max_steps=10_000, steps_per_round=1, evaluate_every=50))
    wait_for_step(runs, 3)
    before = max(r.state.step for r in runs.values())
    worker.pause()
    with worker._runs_lock:  # as the page's Pause does: after the round in progress
        stopped = {r.state.step for r in runs.values()}
    assert len(stopped) == 1, f"runs paused at different steps: {stopped}"
    assert stopped.pop() <= before + 1, "Pause let more than the round in progress (1 step) train"
    assert worker.wait_idle(WAIT) and not worker.busy
    step = runs["A"].state.step
    assert all(r.state.step == step for r in runs.values()), "the worker trained after Pause"


def test_a_change_during_training_takes_effect_at_a_step_boundary_marked_where_it_happened(data):
    runs = make_runs(data, losses=("ce", "focal"))
    worker = make_worker(runs)
    worker.train(live.Plan(max_steps=30, steps_per_round=2, evaluate_every=50))
    wait_for_step(runs, 5)
    new_config = dataclasses.replace(runs["B"].config, loss_params={"gamma": 4.0}, learning_rate=3e-3)
    with worker._runs_lock:  # as session.sync_runs does when the sidebar changes
        runs["B"].reconfigure(new_config)
    assert worker.wait_idle(WAIT)
    (changed_at, text), = runs["B"].state.events
    assert 5 <= changed_at < 30 and changed_at % 2 == 0, f"marked at step {changed_at}, not between two rounds"
    assert "gamma" in text and "lr" in text

    # The same change at the same step in a plain loop gives the same losses, bit for bit.
    alone = make_runs(data, losses=("ce", "focal"))["B"]
    alone.advance(changed_at, evaluate_every=None)
    alone.reconfigure(new_config)
    alone.advance(30 - changed_at, evaluate_every=None)
    assert runs["B"].state.loss_values == alone.state.loss_values


def test_reset_while_training_puts_every_run_back_and_nothing_trains_after_it(data):
    runs = make_runs(data, losses=("ce", "dice"))
    initial = {label: run.model.get_weights() for label, run in runs.items()}
    worker = make_worker(runs)
    worker.train(live.Plan(max_steps=10_000, steps_per_round=1, evaluate_every=50))
    wait_for_step(runs, 2)
    worker.pause()  # as the page's Reset does
    with worker._runs_lock:
        for run in runs.values():
            run.reset()
    assert worker.wait_idle(WAIT)
    for label, run in runs.items():
        assert run.state.step == 0 and run.state.loss_values == ()
        assert weights_equal(run.model.get_weights(), initial[label]), f"run {label} trained after Reset"


def test_a_session_beyond_the_cap_waits_for_the_slot_and_trains_when_it_is_free(data):
    slots = TrainingSlots(1)
    first_runs, second_runs = make_runs(data, losses=("ce",)), make_runs(data, losses=("dice",))
    first, second = make_worker(first_runs, slots, "first"), make_worker(second_runs, slots, "second")
    first.train(live.Plan(max_steps=10_000, steps_per_round=1, evaluate_every=50))
    wait_for_step(first_runs, 1)
    second.step(2, live.Plan(max_steps=100, steps_per_round=2, evaluate_every=50))
    wait_until(second, lambda: second.place == 1)
    assert second_runs["A"].state.step == 0, "trained without a slot"
    first.pause()
    assert first.wait_idle(WAIT) and second.wait_idle(WAIT)
    assert second_runs["A"].state.step == 2 and slots.holders() == 0


def test_a_worker_no_page_reads_stops_by_itself_and_frees_its_slot(data):
    clock = FakeClock()
    slots = TrainingSlots(1, clock=clock)
    runs = make_runs(data, losses=("ce",))
    worker = make_worker(runs, slots, clock=clock)
    worker.train(live.Plan(max_steps=10_000, steps_per_round=1, evaluate_every=50))
    wait_for_step(runs, 1)
    clock.now += live.ABANDONED_SECONDS / 2
    worker.seen()  # a page read it: it goes on
    clock.now += live.ABANDONED_SECONDS / 2 + 1
    assert worker.alive and worker.training
    clock.now += live.ABANDONED_SECONDS / 2  # no page for longer than ABANDONED_SECONDS
    assert worker.wait_idle(WAIT), "the abandoned worker kept training"
    assert not worker.busy and slots.holders() == 0


def test_an_exception_in_the_worker_is_kept_for_the_page_and_frees_the_slot(data, monkeypatch):
    runs = make_runs(data, losses=("ce",))
    slots = TrainingSlots(1)
    worker = make_worker(runs, slots)
    monkeypatch.setattr(runs["A"], "advance", lambda *args, **kwargs: (_ for _ in ()).throw(MemoryError("out of memory")))
    worker.train(live.Plan(max_steps=100, steps_per_round=5, evaluate_every=50))
    assert worker.wait_idle(WAIT)
    assert worker.error == "MemoryError: out of memory"
    assert not worker.busy and slots.holders() == 0
    monkeypatch.undo()
    worker.step(2, live.Plan(max_steps=100, steps_per_round=2, evaluate_every=50))  # a new command clears it
    assert worker.wait_idle(WAIT) and worker.error is None and runs["A"].state.step == 2


def test_the_warm_up_traces_each_step_once_and_changes_no_weight(data):
    runs = make_runs(data, losses=("ce", "tversky"))
    before = {label: run.model.get_weights() for label, run in runs.items()}
    worker = make_worker(runs)
    worker.warm_up()
    assert worker.wait_idle(WAIT)
    for label, run in runs.items():
        assert run._train_step.experimental_get_tracing_count() == 1, label
        assert weights_equal(run.model.get_weights(), before[label]) and run.state.step == 0
    worker.warm_up()
    assert not worker.alive, "traced steps were traced again"
    worker.step(2, live.Plan(max_steps=100, steps_per_round=2, evaluate_every=50))
    assert worker.wait_idle(WAIT)
    assert all(r._train_step.experimental_get_tracing_count() == 1 for r in runs.values()), "Train traced the step again"


def test_the_warm_up_of_a_page_that_has_gone_traces_no_further_run(data):
    runs = make_runs(data, losses=("ce", "tversky", "dice"))
    answers = iter([True])  # the tab is open when the first run's trace begins, gone after it
    worker = make_worker(runs, page_open=lambda: next(answers, False))
    worker.warm_up()
    assert worker.wait_idle(WAIT)
    counts = [r._train_step.experimental_get_tracing_count() for r in runs.values()]
    assert counts == [1, 0, 0], counts
    worker.step(1, live.Plan(max_steps=100, steps_per_round=1, evaluate_every=50))  # Train traces the rest
    assert worker.wait_idle(WAIT) and worker.error is None
    assert [r.state.step for r in runs.values()] == [1, 1, 1]
