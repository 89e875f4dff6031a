"""The private Streamlit calls of explorer/ui/streamlit_internals.py still do their job: a failure
here names the call an upgrade changed."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from unittest import mock

import keras
from streamlit.runtime import Runtime, RuntimeConfig
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
from streamlit.runtime.memory_uploaded_file_manager import MemoryUploadedFileManager
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


def test_a_page_open_check_turns_false_when_streamlit_disconnects_the_session(tmp_path):
    """Against Streamlit's own Runtime and session manager: the check of a session's tab is True
    while it is connected and False once its WebSocket has gone (what the warm-up stops on)."""
    script = tmp_path / "page.py"
    script.write_text("")

    async def connect_then_disconnect() -> list[bool]:
        config = RuntimeConfig(
            script_path=str(script), media_file_storage=MemoryMediaFileStorage("/media"), uploaded_file_manager=MemoryUploadedFileManager("/upload")
        )
        runtime = Runtime(config)
        try:
            await runtime.start()
            session_id = runtime.connect_session(client=mock.MagicMock(), user_info={})
            with mock.patch.object(streamlit_internals, "get_script_run_ctx", return_value=mock.Mock(session_id=session_id)):
                page_open = streamlit_internals.page_open_check()
            seen = [page_open()]
            runtime.disconnect_session(session_id)
            return [*seen, page_open()]
        finally:
            runtime.stop()
            await runtime.stopped
            Runtime._instance = None  # the singleton: later AppTests run without a server, as before

    # In a thread of its own: Playwright's sync API (the browser tests) keeps an event loop running
    # in this one, where asyncio.run refuses to start another.
    with ThreadPoolExecutor(1) as thread:
        assert thread.submit(asyncio.run, connect_then_disconnect()).result() == [True, False]


def test_without_a_server_the_page_counts_as_open():
    assert not Runtime.exists()
    assert streamlit_internals.page_open_check()()
