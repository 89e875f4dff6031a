"""The training worker (explorer.live): commands applied between rounds, lockstep, results equal to
a plain loop, the slot taken and given back, a gone session's worker stopped, errors reported.

Waits are on conditions (the worker's own `wait_idle`, or polling the snapshot with a deadline
that only fails the test); nothing is decided by a sleep."""

from __future__ import annotations

import dataclasses
import threading
import time

import numpy as np
import pytest
from test_training import small_config, tiny_dataset, weights_equal

from explorer.live import Schedule, Trainer, TrainingSlots, advance_together
from explorer.training import Run

WAIT = 300.0  # seconds a condition may take on a loaded 2-core machine before the test fails


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


@pytest.fixture(scope="module")
def data():
    return tiny_dataset(num_train=48)


@pytest.fixture(autouse=True)
def no_thread_left_behind():
    yield
    left = [t.name for t in threading.enumerate() if t.name.startswith("explorer-trainer")]
    assert not left, f"worker threads left behind: {left}"


CONFIGS = {
    "A": small_config(loss_id="ce"),
    "B": small_config(loss_id="focal", loss_params={"alpha": 0.5, "gamma": 2.0}, class_weights=(1.0, 2.0, 3.0)),
    "C": small_config(loss_id="dice"),
}


def make_trainer(data, labels="AB", slots=None, clock=None, schedule=Schedule(max_steps=1000, steps_per_round=2, evaluate_every=4)):
    """A worker on fresh runs. Without a fake clock it never takes the session for gone: these
    tests wait on it without reading snapshots, and a round takes long on a loaded machine."""
    runs = {label: Run(CONFIGS[label], data) for label in labels}
    clocked = {"clock": clock} if clock else {"idle_seconds": float("inf")}
    trainer = Trainer("session-1", runs, threading.RLock(), slots or TrainingSlots(2), **clocked)
    trainer.set_schedule(schedule)
    return trainer, runs


def wait_until(condition, what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def plain_loop(data, labels: str, steps: int) -> dict[str, Run]:
    runs = {label: Run(CONFIGS[label], data) for label in labels}
    for run in runs.values():
        run.advance(steps, evaluate_every=None)
    return runs


def assert_same_training(runs: dict[str, Run], reference: dict[str, Run]) -> None:
    for label, run in runs.items():
        assert run.state.loss_values == reference[label].state.loss_values, f"run {label}: losses differ"
        assert weights_equal(run.model.get_weights(), reference[label].model.get_weights()), f"run {label}: weights differ"


def test_step_trains_exactly_n_steps_in_lockstep_bitwise_equal_to_a_plain_loop(data):
    trainer, runs = make_trainer(data, "ABC")
    trainer.step(7)
    assert trainer.wait_idle(WAIT)
    snapshot = trainer.snapshot()
    assert {label: s.step for label, s in snapshot.states.items()} == {"A": 7, "B": 7, "C": 7}
    assert not snapshot.active and snapshot.error is None
    assert all(s.latest.step == 7 for s in snapshot.states.values()), "a Step ends with a validation snapshot"
    assert_same_training(runs, plain_loop(data, "ABC", 7))


def test_pause_stops_within_one_round_and_the_runs_stay_in_lockstep(data):
    slots = TrainingSlots(2)
    trainer, runs = make_trainer(data, slots=slots)
    trainer.train()
    wait_until(lambda: trainer.snapshot().step >= 4, "4 steps")
    assert slots.holders() == 1, "training holds a slot"
    at_pause = max(r.state.step for r in runs.values())
    trainer.pause()
    assert trainer.wait_idle(WAIT)
    steps = {r.state.step for r in runs.values()}
    assert len(steps) == 1, f"the runs are not in lockstep: {steps}"
    # The round in flight when Pause came finishes (2 steps a round), then nothing more.
    assert steps.pop() <= at_pause + 2
    assert slots.holders() == 0, "a paused session gives its slot back"
    assert not trainer.snapshot().training


def test_a_change_made_between_rounds_is_marked_at_its_step_and_replays_in_a_plain_loop(data):
    trainer, runs = make_trainer(data)
    trainer.train()
    wait_until(lambda: trainer.snapshot().step >= 2, "2 steps")
    new_b = dataclasses.replace(runs["B"].config, loss_params={"alpha": 0.25, "gamma": 1.0}, learning_rate=3e-3)
    with trainer._lock:  # as session.sync_runs does on the page
        changed_at = runs["B"].state.step
        runs["B"].reconfigure(new_b)
        assert {r.state.step for r in runs.values()} == {changed_at}, "a change lands between two rounds"
    wait_until(lambda: trainer.snapshot().step >= changed_at + 4, "4 more steps")
    trainer.pause()
    assert trainer.wait_idle(WAIT)
    assert runs["B"].state.events == ((changed_at, "alpha 0.5 → 0.25, gamma 2.0 → 1.0, lr 0.001 → 0.003"),)
    end = runs["B"].state.step
    reference = plain_loop(data, "AB", changed_at)
    reference["B"].reconfigure(new_b)
    for run in reference.values():
        run.advance(end - changed_at, evaluate_every=None)
    assert_same_training(runs, reference)


def test_reset_goes_back_to_step_zero_and_the_initial_weights(data):
    trainer, runs = make_trainer(data)
    trainer.step(3)
    assert trainer.wait_idle(WAIT)
    trainer.reset()
    assert trainer.wait_idle(WAIT)
    for run in runs.values():
        assert run.state.step == 0 and run.state.loss_values == ()
        assert weights_equal(run.model.get_weights(), run.initial_weights)
    assert trainer.snapshot().step == 0


def test_training_stops_by_itself_at_max_steps(data):
    trainer, runs = make_trainer(data, schedule=Schedule(max_steps=5, steps_per_round=2, evaluate_every=4))
    trainer.train()
    assert trainer.wait_idle(WAIT)
    assert {r.state.step for r in runs.values()} == {5}
    assert not trainer.snapshot().training
    assert all(r.state.latest.step == 5 for r in runs.values()), "the maps show the last step"


def test_a_session_that_stops_reading_has_its_worker_stopped_and_its_slot_freed(data):
    clock, slots = FakeClock(), TrainingSlots(1)
    trainer, runs = make_trainer(data, slots=slots, clock=clock)
    trainer.train()
    wait_until(lambda: trainer.snapshot().step >= 2, "2 steps")  # each read at clock time 0
    assert slots.holders() == 1
    clock.now = trainer.idle_seconds + 1  # no page has read a snapshot since
    assert trainer.wait_idle(WAIT), "the worker of a gone session did not stop"
    assert slots.holders() == 0, "the gone session kept its slot"
    assert slots.acquire("another session") == 0


def test_a_session_beyond_the_cap_waits_with_its_place_then_trains(data):
    slots = TrainingSlots(1)
    assert slots.acquire("other") == 0
    trainer, runs = make_trainer(data, slots=slots)
    trainer.step(2)  # Step goes through the slot too
    wait_until(lambda: trainer.snapshot().place == 1, "the place in the queue")
    assert trainer.snapshot().active and all(r.state.step == 0 for r in runs.values())
    slots.release("other")
    assert trainer.wait_idle(WAIT)
    assert {r.state.step for r in runs.values()} == {2}
    assert trainer.snapshot().place == 0 and slots.holders() == 0


def test_an_exception_in_the_worker_is_reported_in_the_snapshot_and_frees_the_slot(data):
    slots = TrainingSlots(1)
    trainer, runs = make_trainer(data, slots=slots)

    def broken(*args, **kwargs):
        raise RuntimeError("out of memory")

    runs["B"].advance = broken
    trainer.train()
    assert trainer.wait_idle(WAIT)
    snapshot = trainer.snapshot()
    assert snapshot.error and "RuntimeError: out of memory" in snapshot.error and "press Train" in snapshot.error
    assert not snapshot.active and slots.holders() == 0
    del runs["B"].advance  # fixed: Train again clears the message and trains
    trainer.step(2)
    assert trainer.wait_idle(WAIT)
    assert trainer.snapshot().error is None


def test_the_nan_guard_halts_a_run_in_the_worker_and_the_others_finish(data):
    poisoned = dataclasses.replace(data, train_images=np.full_like(data.train_images, np.nan))
    runs = {"A": Run(CONFIGS["A"], data), "B": Run(CONFIGS["B"], poisoned)}
    trainer = Trainer("s", runs, threading.RLock(), TrainingSlots(1), idle_seconds=float("inf"))
    trainer.set_schedule(Schedule(max_steps=4, steps_per_round=2, evaluate_every=2))
    trainer.train()
    assert trainer.wait_idle(WAIT)
    states = trainer.snapshot().states
    assert states["B"].halted and "non-finite loss" in states["B"].halted and states["B"].step == 0
    assert states["A"].step == 4 and states["A"].halted is None


def test_a_round_cut_between_two_runs_is_caught_up_by_the_next(data):
    runs = {label: Run(CONFIGS[label], data) for label in "AB"}
    real = runs["B"].advance
    runs["B"].advance = lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt)
    with pytest.raises(KeyboardInterrupt):
        advance_together(runs, 3, max_steps=100, evaluate_every=None)
    runs["B"].advance = real
    assert runs["A"].state.step == 3 and runs["B"].state.step == 0
    advance_together(runs, 2, max_steps=100, evaluate_every=None)  # B catches up to 2, A waits
    assert [r.state.step for r in runs.values()] == [3, 2]
    advance_together(runs, 2, max_steps=100, evaluate_every=None)
    assert [r.state.step for r in runs.values()] == [4, 4]
