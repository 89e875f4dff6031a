"""A cap on how many browser sessions train at once, shared by the whole server process.

Every training step uses all cores, so N sessions training together each run N times slower.
With the cap (EXPLORER_MAX_TRAINING_SESSIONS), the first sessions that press Train or Step hold a
slot until they pause or their steps are done; the others wait, and the page says so, instead of
slowing everyone down. A slot whose session stopped ticking (tab closed) is taken back
STALE_SECONDS after its last tick ended; a tick that is still training (tracing the step on a
loaded CPU can take longer) keeps its slot.

A session's live runs and its background comparison (explorer/ui/compare_job.py) share the
session's one slot, each with its own claim: the slot is held until both have let go.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

import streamlit as st

CAP_VARIABLE = "EXPLORER_MAX_TRAINING_SESSIONS"
DEFAULT_CAP = 2
STALE_SECONDS = 10.0
LIVE = "live runs"  # the claim of Train and Step


def configured_cap(environ=os.environ) -> int:
    """The cap the server was started with; ValueError saying what to set when it is not a whole
    number of at least 1 (0 would let nobody train, ever)."""
    text = environ.get(CAP_VARIABLE, "").strip()
    if not text:
        return DEFAULT_CAP
    try:
        cap = int(text)
    except ValueError:
        cap = 0
    if cap < 1:
        raise ValueError(
            f"{CAP_VARIABLE}={text!r} is not a whole number of at least 1. It caps how many browser sessions "
            f"train at once: set it to 1, 2, … (or unset it for {DEFAULT_CAP}) and restart the server."
        )
    return cap


class TrainingSlots:
    def __init__(self, size: int, stale_seconds: float = STALE_SECONDS, clock=time.monotonic):
        self.size = size
        self.stale_seconds = stale_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._holders: dict[str, float] = {}  # session id → last tick
        self._waiting: dict[str, float] = {}  # session id → last ask, in order of arrival
        self._claims: dict[str, set[str]] = {}  # session id → what asked for its slot or holds it
        self._training: Counter[str] = Counter()  # holders inside training() (a tick, a comparison): never stale

    def acquire(self, session_id: str, claim: str = LIVE) -> int:
        """0 if `session_id` holds a slot (now or already); else its place in the queue (1 = next).
        Sessions are served in order of arrival; calling again keeps the place."""
        with self._lock:
            now = self._clock()
            for table in (self._holders, self._waiting):
                for sid, seen in list(table.items()):
                    if now - seen > self.stale_seconds and sid not in self._training:
                        del table[sid]
                        self._claims.pop(sid, None)
            self._claims.setdefault(session_id, set()).add(claim)
            if session_id in self._holders:
                self._holders[session_id] = now
                return 0
            self._waiting[session_id] = now  # a key already present keeps its place
            place = list(self._waiting).index(session_id)
            free = self.size - len(self._holders)
            if place < free:
                del self._waiting[session_id]
                self._holders[session_id] = now
                return 0
            return place - free + 1

    @contextmanager
    def training(self, session_id: str) -> Iterator[None]:
        """Around training (a tick, a whole comparison): the slot is not taken back while it trains,
        however long that takes, and its staleness counts from the end of the training."""
        with self._lock:
            self._training[session_id] += 1
        try:
            yield
        finally:
            with self._lock:
                self._training -= Counter([session_id])
                if session_id in self._holders:
                    self._holders[session_id] = self._clock()

    def release(self, session_id: str, claim: str = LIVE) -> None:
        """`claim` lets go; the session's slot or place goes when no claim of it is left."""
        with self._lock:
            claims = self._claims.get(session_id, set())
            claims.discard(claim)
            if not claims:
                self._claims.pop(session_id, None)
                self._holders.pop(session_id, None)
                self._waiting.pop(session_id, None)

    def holders(self) -> int:
        with self._lock:
            return len(self._holders)


@st.cache_resource
def slots() -> TrainingSlots:
    """The server's slots; ValueError (not cached) while the cap is misconfigured."""
    return TrainingSlots(configured_cap())


def session_id() -> str:
    return st.session_state.setdefault("session_id", uuid.uuid4().hex)
