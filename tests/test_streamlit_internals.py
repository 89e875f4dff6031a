"""The private Streamlit call of explorer/ui/streamlit_internals.py still does its job: a failure
here names the call an upgrade changed."""

from __future__ import annotations

from unittest import mock

import keras
from streamlit.runtime.scriptrunner import script_runner

from explorer.ui import streamlit_internals


def test_streamlit_still_cleans_up_after_a_script_run_through_clean_problem_modules():
    assert callable(getattr(script_runner, "_clean_problem_modules", None)), (
        "streamlit.runtime.scriptrunner.script_runner._clean_problem_modules is gone: "
        "see explorer/ui/streamlit_internals.py"
    )
    source = script_runner.ScriptRunner._run_script.__code__.co_names
    assert "_clean_problem_modules" in source, "ScriptRunner._run_script no longer calls _clean_problem_modules"


def test_after_keep_keras_state_a_script_run_no_longer_clears_the_keras_session(monkeypatch):
    # Streamlit's own clean-up (a page opened earlier in this process has replaced it already).
    monkeypatch.setattr(script_runner, "_clean_problem_modules", streamlit_internals.STREAMLIT_CLEAN_UP)
    with mock.patch.object(keras.backend, "clear_session") as clear_session:
        script_runner._clean_problem_modules()
        assert clear_session.called, "Streamlit no longer clears Keras's session: the patch may be dead code"
        clear_session.reset_mock()
        streamlit_internals.keep_keras_state()
        script_runner._clean_problem_modules()
        assert not clear_session.called
