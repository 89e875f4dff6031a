"""The cap on sessions training at once: first come, first served, stale slots taken back; Step
queues like Train; a misconfigured cap is named on the page."""

import re

import pytest
from page_session import APP, TIMEOUT, assert_no_exception, open_page
from streamlit.testing.v1 import AppTest

from explorer.ui import capacity
from explorer.ui.capacity import TrainingSlots


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_sessions_beyond_the_cap_wait_in_order_of_arrival():
    slots = TrainingSlots(2, clock=FakeClock())
    assert slots.acquire("a") == 0 and slots.acquire("b") == 0
    assert slots.acquire("c") == 1
    assert slots.acquire("d") == 2
    assert slots.acquire("c") == 1, "asking again keeps the place"
    assert slots.acquire("a") == 0, "a holder keeps its slot"
    slots.release("a")
    assert slots.acquire("d") == 1, "c arrived first: the free slot is kept for c"
    assert slots.acquire("c") == 0
    assert slots.acquire("d") == 1
    assert slots.holders() == 2


def test_a_closed_session_loses_its_slot_after_the_stale_time():
    clock = FakeClock()
    slots = TrainingSlots(1, stale_seconds=10, clock=clock)
    assert slots.acquire("closed tab") == 0
    assert slots.acquire("other") == 1
    clock.now = 5
    assert slots.acquire("other") == 1
    clock.now = 11  # "closed tab" last ticked at 0
    assert slots.acquire("other") == 0
    assert slots.acquire("closed tab") == 1


def test_a_sessions_live_runs_and_its_comparison_share_one_slot_until_both_let_go():
    clock = FakeClock()
    slots = TrainingSlots(1, stale_seconds=10, clock=clock)
    assert slots.acquire("me") == 0
    assert slots.acquire("me", "comparison") == 0, "the comparison shares the slot its live runs hold"
    assert slots.acquire("other") == 1
    with slots.training("me"):  # the comparison trains
        with slots.training("me"):  # a live tick starts and ends meanwhile
            pass
        slots.release("me")  # Pause
        clock.now = 100
        assert slots.acquire("other") == 1, "the comparison keeps the slot, and never goes stale while it trains"
    slots.release("me", "comparison")
    assert slots.acquire("other") == 0


def test_the_cap_from_the_environment_is_a_whole_number_of_at_least_one():
    assert capacity.configured_cap({}) == capacity.DEFAULT_CAP
    assert capacity.configured_cap({capacity.CAP_VARIABLE: " 3 "}) == 3
    for bad in ("0", "-1", "two", "1.5"):
        with pytest.raises(ValueError, match=f"{capacity.CAP_VARIABLE}='{re.escape(bad)}' is not a whole number of at least 1"):
            capacity.configured_cap({capacity.CAP_VARIABLE: bad})


def test_a_misconfigured_cap_is_named_on_the_page_with_what_to_set(monkeypatch):
    capacity.slots.clear()  # the server's slots are made by its first page: make them again
    monkeypatch.setenv(capacity.CAP_VARIABLE, "0")
    try:
        at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
        assert not at.exception
        assert any(capacity.CAP_VARIABLE in e.value and "restart the server" in e.value for e in at.error), [e.value for e in at.error]
        assert not at.button, "no training controls on a misconfigured server"
    finally:
        capacity.slots.clear()


def test_step_waits_for_a_training_slot_like_train():
    """Step trains only with a slot: with the cap taken by other sessions it waits in the queue
    and says so, then trains its steps when a slot frees, and gives the slot back."""
    at = open_page()
    slots = capacity.slots()
    others = [f"other session {i}" for i in range(slots.size)]
    saved_stale = slots.stale_seconds
    slots.stale_seconds = 1e9  # the other sessions must not go stale while this page traces its step
    try:
        assert all(slots.acquire(other) == 0 for other in others)
        steps = int(at.slider(key="steps_per_tick").value)
        at.button(key="step").click().run()
        assert_no_exception(at)
        runs = at.session_state["runs"]
        assert all(run.state.step == 0 for run in runs.values())
        assert any("The server is busy" in i.value and "place 1" in i.value for i in at.info), [i.value for i in at.info]

        slots.release(others[0])
        assert at.session_state["live_worker"].wait_idle(TIMEOUT), "the waiting Step never trained"
        at.run()
        assert_no_exception(at)
        assert all(run.state.step == steps for run in runs.values())
        assert not any("The server is busy" in i.value for i in at.info)
        assert slots.holders() == slots.size - 1, "the session gave its slot back after its steps"
    finally:
        for other in others:
            slots.release(other)
        slots.stale_seconds = saved_stale
