"""A loss comparison started from the page: compare.run_all on the page's dataset in a background
thread, inside the session's training slot.

The thread never calls Streamlit: it sets the job's fields, each in one assignment, and the page
reads them. Cancel sets an event that the wait for a slot and run_all both look at. Whatever the
thread raises ends up in `error`, for the page to show. A job that no page has read for
ABANDONED_SECONDS (its tab was closed) cancels itself, so it frees its slot for other sessions."""

from __future__ import annotations

import threading
import time

from explorer import compare
from explorer.ui.capacity import TrainingSlots

ASK_SECONDS = 0.5  # a queued job asks again this often (a session that stops asking goes stale)
# The page reads a running job every second; a hidden tab's timers may slow to one a minute.
ABANDONED_SECONDS = 300.0


class ComparisonJob:
    def __init__(self, plan: compare.Plan, subject: compare.TrainingData, command: str, data: str | None, slots: TrainingSlots, session_id: str, clock=time.monotonic):
        self.plan, self.subject, self.command, self.data = plan, subject, command, data
        self.tasks = plan.tasks()
        self.place: int | None = None  # its place in the queue for a slot (1 = next); 0 once it holds one
        self.progress: compare.Progress | None = None  # once the runs have started
        self.outcomes: list[compare.Outcome] | None = None
        self.results: dict | None = None  # what the command line writes to results.json
        self.error: str | None = None
        self._slots, self._session_id = slots, session_id
        # Its own claim on the session's slot, beside the live runs': a job cancelled by a change of
        # data lets go only of its own when it ends, not of the next comparison's.
        self._claim = f"comparison {id(self)}"
        self._cancel = threading.Event()
        self._clock = clock
        self._read_at = clock()
        self._ended = threading.Event()
        self._thread = threading.Thread(target=self._run, name="loss comparison", daemon=True)

    def start(self) -> ComparisonJob:
        self._thread.start()
        return self

    def cancel(self) -> None:
        self._cancel.set()

    def seen(self) -> None:
        """A page has read the job: it is not abandoned."""
        self._read_at = self._clock()

    def _should_stop(self) -> bool:
        if self._clock() - self._read_at > ABANDONED_SECONDS:
            self._cancel.set()
        return self._cancel.is_set()

    @property
    def cancelling(self) -> bool:
        return self._cancel.is_set()

    @property
    def running(self) -> bool:
        return not self._ended.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """True once the job has ended: done, failed or cancelled."""
        return self._ended.wait(timeout)

    def _run(self) -> None:
        try:
            if self._wait_for_slot():
                with self._slots.training(self._session_id):  # never taken back as stale, however long it takes
                    self._compare()
        except Exception as error:  # the page shows it: a thread's exception would only reach the server's log
            self.error = f"{type(error).__name__}: {error}"
        finally:
            self._slots.release(self._session_id, self._claim)
            self._ended.set()

    def _wait_for_slot(self) -> bool:
        """True once the session holds a slot; False if cancelled first."""
        while not self._should_stop():
            self.place = self._slots.acquire(self._session_id, self._claim)
            if self.place == 0:
                return True
            self._cancel.wait(ASK_SECONDS)
        return False

    def _compare(self) -> None:
        code = compare.code_fingerprint()  # of the code the runs train with, taken before they start
        self.progress = compare.Progress(len(self.tasks), print_line=lambda line: None)
        outcomes = compare.run_all(self.tasks, self.subject, workers=1, progress=self.progress, should_stop=self._should_stop)
        self.results = self.plan.results(self.command, code, outcomes, self.data)
        self.outcomes = outcomes
