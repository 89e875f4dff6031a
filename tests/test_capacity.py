"""The cap on sessions training at once: first come, first served, stale slots taken back, and
EXPLORER_MAX_TRAINING_SESSIONS checked when the server starts."""

import pytest

from explorer.live import TrainingSlots
from explorer.ui.capacity import max_training_sessions


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


@pytest.mark.parametrize("value,expected", [(None, 2), ("1", 1), (" 3 ", 3)])
def test_the_cap_comes_from_the_environment(value, expected):
    environ = {} if value is None else {"EXPLORER_MAX_TRAINING_SESSIONS": value}
    assert max_training_sessions(environ) == expected


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5", ""])
def test_a_bad_cap_is_refused_with_the_variable_and_the_values_it_takes(value):
    with pytest.raises(ValueError) as refused:
        max_training_sessions({"EXPLORER_MAX_TRAINING_SESSIONS": value})
    message = str(refused.value)
    assert "EXPLORER_MAX_TRAINING_SESSIONS" in message and "whole number, 1 or more" in message
