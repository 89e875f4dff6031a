"""How the browser tests and the page bench know a rerun has ended: by the server's script_finished
messages, counted from the page's WebSocket (explorer/bench/appserver.py). A fake page stands in
for Playwright's: it hands over one frame each time the waiting code lets Playwright run."""

from __future__ import annotations

import time

import pytest
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

from explorer.bench.appserver import act_and_wait_for_a_full_run, watch_script_runs


def finished(status) -> bytes:
    message = ForwardMsg()
    message.script_finished = status
    return message.SerializeToString()


def delta() -> bytes:
    message = ForwardMsg()
    message.delta.new_element.markdown.body = "drawn"
    return message.SerializeToString()


class FakeSocket:
    def __init__(self):
        self.handlers = {}

    def on(self, event, handler):
        self.handlers[event] = handler


class FakePage:
    """Frames queued by the test reach the page's handlers one per wait, as Playwright's events do."""

    def __init__(self):
        self.handlers, self.queued, self.after_action = {}, [], []
        self.waits = 0

    def on(self, event, handler):
        self.handlers[event] = handler

    def open_socket(self) -> FakeSocket:
        socket = FakeSocket()
        self.handlers["websocket"](socket)
        self.socket = socket
        return socket

    def wait_for_timeout(self, ms):
        self.waits += 1
        if self.queued:
            self.socket.handlers["framereceived"](self.queued.pop(0))
        time.sleep(ms / 1000)

    def wait_for_function(self, script, timeout, polling):
        self.idle_checked = True

    def evaluate(self, script):
        self.drawn = True


@pytest.fixture
def page() -> FakePage:
    page = FakePage()
    watch_script_runs(page)
    page.open_socket()
    return page


def test_a_rerun_counts_when_its_script_finished_arrives_even_if_it_never_showed_as_running(page):
    page.queued = [delta(), finished(ForwardMsg.FINISHED_SUCCESSFULLY)]
    act_and_wait_for_a_full_run(page, lambda: None, timeout_ms=5000)
    assert page.full_runs_ended == 1 and page.waits == 2 and page.idle_checked and page.drawn


def test_a_fragment_run_or_a_run_cut_short_is_not_the_rerun(page):
    page.queued = [finished(ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY), finished(ForwardMsg.FINISHED_EARLY_FOR_RERUN)]
    with pytest.raises(TimeoutError, match="no script run ended"):
        act_and_wait_for_a_full_run(page, lambda: None, timeout_ms=300)
    assert page.full_runs_ended == 0 and not page.queued


def test_only_runs_ended_after_the_action_count(page):
    page.socket.handlers["framereceived"](finished(ForwardMsg.FINISHED_SUCCESSFULLY))  # before it
    page.socket.handlers["framereceived"]("a text frame")  # ignored, not parsed
    assert page.full_runs_ended == 1
    with pytest.raises(TimeoutError):
        act_and_wait_for_a_full_run(page, lambda: None, timeout_ms=100)
    page.queued = [finished(ForwardMsg.FINISHED_SUCCESSFULLY)]
    act_and_wait_for_a_full_run(page, lambda: None, timeout_ms=5000)
    assert page.full_runs_ended == 2
