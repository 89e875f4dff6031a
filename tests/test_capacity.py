"""The cap on sessions training at once: first come, first served, stale slots taken back."""

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
