"""The server's cap on sessions training at once (explorer.live.TrainingSlots), one per process,
sized by EXPLORER_MAX_TRAINING_SESSIONS (default 2), and each browser session's id in it."""

from __future__ import annotations

import os
import uuid

import streamlit as st

from explorer.live import TrainingSlots

VARIABLE = "EXPLORER_MAX_TRAINING_SESSIONS"
DEFAULT_MAX_TRAINING_SESSIONS = 2


def max_training_sessions(environ=os.environ) -> int:
    """The cap from the environment; a value that is not a whole number of 1 or more is refused
    with a message that names the variable and the values it takes."""
    raw = environ.get(VARIABLE, str(DEFAULT_MAX_TRAINING_SESSIONS))
    try:
        value = int(raw.strip())
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(
            f"{VARIABLE}={raw!r} is not a number of sessions: it takes a whole number, 1 or more "
            f"(how many browser sessions may train at once; {DEFAULT_MAX_TRAINING_SESSIONS} when unset). "
            "Fix it and restart the server."
        )
    return value


MAX_TRAINING_SESSIONS = max_training_sessions()  # checked when the server starts


@st.cache_resource
def slots() -> TrainingSlots:
    return TrainingSlots(MAX_TRAINING_SESSIONS)


def session_id() -> str:
    return st.session_state.setdefault("session_id", uuid.uuid4().hex)
