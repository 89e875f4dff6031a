"""Opening app.py in an AppTest session, shared by the page tests."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

APP = Path(__file__).resolve().parent.parent / "app.py"  # absolute: AppTest resolves relative paths against the caller
TIMEOUT = 180  # seconds per script run: importing TensorFlow, building runs, tracing steps and planes


def assert_no_exception(at: AppTest) -> None:
    assert not at.exception, "the page raised:\n" + "\n\n".join(f"{e.message}\n{''.join(e.stack_trace)}" for e in at.exception)


def open_page(query: dict[str, str] | None = None) -> AppTest:
    """A new browser session on the page, optionally opened with a link's query parameters."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    for key, value in (query or {}).items():
        at.query_params[key] = value
    at.run()
    assert_no_exception(at)
    return at
