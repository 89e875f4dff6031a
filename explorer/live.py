"""Training beside the page: one worker thread per browser session trains the session's runs while
the page only reads their states and draws them.

Before, the page trained inside its own timer ticks: each tick drew, then trained a few steps, so
training waited for drawing and drawing for training (0.43 of the rate of the same runs in a plain
process). Now the worker trains round after round, and the page redraws on its own timer whatever
the runs' latest states are (each `Run.state` is immutable and replaced whole, so a state read
while the worker trains is a consistent snapshot).

Commands (Train, Pause, Step n, Reset, and the sidebar's changes through `session.sync_runs`) take
effect between rounds: a round holds the session's runs lock while every run advances the same
steps (lockstep), and anything that changes the runs takes that lock too. The worker never calls
Streamlit. It holds the session's training slot (explorer/ui/capacity.py) while it has work and
lets go when it has none, so the cap and its queue work as before. An exception in the worker is
kept in `error` for the page to show. A worker whose page stopped reading it (tab closed) for
ABANDONED_SECONDS stops and frees the slot. A warm-up (the trace of the runs' steps before Train)
ends as soon as its page has gone: a reload opens a new session whose own warm-up would otherwise
share the interpreter with the old one's for seconds.
"""

from __future__ import annotations

import threading
import time
import weakref
from dataclasses import dataclass

import numpy as np

from explorer.training import Run

ASK_SECONDS = 0.5  # a worker waiting for a slot asks again this often
# The page reads a training worker a few times a second; a hidden tab's timers may slow to once a
# minute (Chromium's intensive throttling), which must not count as closed.
ABANDONED_SECONDS = 90.0
# A round releases the runs lock and lets a waiting rerun take it before the next round (Python's
# locks are not fair: without the pause the worker could take the lock again at once).
YIELD_SECONDS = 0.005

_workers: weakref.WeakSet[LiveTrainer] = weakref.WeakSet()
_traced: weakref.WeakSet = weakref.WeakSet()  # the runs' traced steps that have run once


@dataclass(frozen=True)
class Plan:
    """What Train trains: rounds of `steps_per_round` steps up to `max_steps`, a validation snapshot
    whenever a multiple of `evaluate_every` is crossed."""

    max_steps: int
    steps_per_round: int
    evaluate_every: int


def advance_in_lockstep(runs: dict[str, Run], steps: int, max_steps: int, evaluate_every: int | None) -> None:
    """Bring every run that is not halted to one target step, `steps` past the slowest: runs stay
    at one step even if something cut a round short between two of them."""
    active = [r for r in runs.values() if not r.state.halted]
    if not active:
        return
    target = min(min(r.state.step for r in active) + steps, max_steps)
    for run in active:
        if run.state.step < target:
            run.advance(target - run.state.step, evaluate_every)


def _to_next_multiple(runs: dict[str, Run], steps_per_round: int) -> int:
    """A round's steps: up to the next multiple of `steps_per_round`, so rounds (and the validations
    at their ends) fall on the same steps after a short first round or a Step of another size."""
    step = min((r.state.step for r in runs.values() if not r.state.halted), default=0)
    return steps_per_round - step % steps_per_round


def finished(runs: dict[str, Run], max_steps: int) -> bool:
    return all(r.state.halted or r.state.step >= max_steps for r in runs.values())


class LiveTrainer:
    """The worker of one session. `runs` is the session's own dict (changed in place by
    `session.sync_runs` under `runs_lock`)."""

    def __init__(self, runs: dict[str, Run], runs_lock, slots, session_id: str, clock=time.monotonic, page_open=lambda: True):
        self._runs, self._runs_lock = runs, runs_lock
        self._slots, self._session_id = slots, session_id
        self._clock = clock
        self._page_open = page_open  # False once the session's browser tab has gone
        self._changed = threading.Condition()  # guards every field below
        self._plan: Plan | None = None
        self._training = False  # Train pressed, until Pause, Reset, or every run done or halted
        self._pending_steps = 0  # asked for by Step, not trained yet
        self._pending_plan: Plan | None = None
        self._warm_up = False  # trace the runs' steps before anyone presses Train
        self._stop = False
        self._thread: threading.Thread | None = None
        self._read_at = clock()
        self.place: int | None = None  # its place in the queue for a slot; 0 while it holds one
        self.error: str | None = None
        self._first_round = False
        self._rounds = 0  # training rounds done, so a page can wait for the first after a command
        self._rounds_at_command = 0
        _workers.add(self)

    # -- commands (from the page's callbacks) -----------------------------------------------------

    def train(self, plan: Plan) -> None:
        """Train in rounds until the plan's last step. The first round is a single step, so the
        page shows that training started within a step's time of the click; the next ends at a
        multiple of the steps per round."""
        with self._changed:
            self._plan, self._training, self.error = plan, True, None
            self._first_round, self._rounds_at_command = True, self._rounds
            self._ask_for_slot()
            self._wake()

    def step(self, steps: int, plan: Plan) -> None:
        """Train exactly `steps` more steps (in one round, with a snapshot at its end), then stop."""
        with self._changed:
            self._pending_steps, self._pending_plan, self.error = steps, plan, None
            self._ask_for_slot()
            self._wake()

    def _ask_for_slot(self) -> None:
        """Under `_changed`, at the click: sessions are served in the order their users pressed,
        and a queued page says so at once, even while its worker finishes tracing a step."""
        self.place = self._slots.acquire(self._session_id)

    def pause(self) -> None:
        """Stop after the round in progress; hold the runs lock after this to act on still runs."""
        with self._changed:
            self._training, self._pending_steps = False, 0
            self._changed.notify_all()

    def replan(self, plan: Plan) -> None:
        """The sidebar's steps per round, last step or validation interval changed."""
        with self._changed:
            if self._plan is not None:
                self._plan = plan

    def warm_up(self) -> None:
        """Trace the runs' train steps now, in the background, so Train starts at once (a step
        traced before, or a run that changed its loss since, is traced once)."""
        with self._changed:
            if not self.busy and any(_step_of(run) not in _traced for run in list(self._runs.values())):
                self._warm_up = True
                self._wake()

    def seen(self) -> None:
        """A page has read the worker: its session is open."""
        self._read_at = self._clock()

    def stop(self, timeout: float | None = None) -> None:
        """End the thread (tests, a closed session); the runs keep what they trained."""
        with self._changed:
            self._stop = True
            thread = self._thread
            self._changed.notify_all()
        if thread is not None:
            thread.join(timeout)

    # -- what the page reads ----------------------------------------------------------------------

    @property
    def training(self) -> bool:
        return self._training

    @property
    def busy(self) -> bool:
        """Training, or steps of a Step still to train."""
        return self._training or self._pending_steps > 0

    @property
    def alive(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive()

    def wait_for_steps(self, timeout: float) -> bool:
        """Wait until a Step's steps are trained, or the worker is queued for a slot, or it failed.
        True if nothing of the Step is left to train."""
        with self._changed:
            self._changed.wait_for(lambda: not self._pending_steps or self.place or self.error or not self.alive, timeout)
            return not self._pending_steps

    def wait_for_a_round(self, timeout: float) -> bool:
        """Wait until a round has been trained since Train was pressed (or the worker is queued for
        a slot, has failed or is done). True if one has."""
        with self._changed:
            self._changed.wait_for(lambda: self._rounds > self._rounds_at_command or self.place or self.error or not self.busy, timeout)
            return self._rounds > self._rounds_at_command

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until the thread has ended (nothing left to do). True if it has."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return not self.alive

    # -- the thread -------------------------------------------------------------------------------

    def _wake(self) -> None:
        """Under `_changed`: start the thread if it has ended, else tell it something changed."""
        self._stop = False
        self._read_at = self._clock()
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name=f"live training {self._session_id[:8]}", daemon=True)
            self._thread.start()
        self._changed.notify_all()

    def _work(self) -> None:
        try:
            while self._next_round():
                pass
        except Exception as error:  # shown by the page: a thread's exception would only reach the log
            with self._changed:
                self.error = f"{type(error).__name__}: {error}"
                self._training, self._pending_steps = False, 0
                self._end()

    def _end(self) -> None:
        """Under `_changed`: the thread is about to return. The slot goes here, under the same lock
        that a new command takes, so a new thread never holds a slot that an old one then frees."""
        self._slots.release(self._session_id)
        self.place = None
        self._thread = None
        self._changed.notify_all()

    def _next_round(self) -> bool:
        """One round of work; False when there is none left (the thread ends)."""
        with self._changed:
            if self._clock() - self._read_at > ABANDONED_SECONDS:
                self._training, self._pending_steps, self._warm_up = False, 0, False
            if self._stop or not (self.busy or self._warm_up):
                self._end()
                return False
            if not self.busy:  # only the warm-up: needs no slot
                self._warm_up = False
                warm = True
            else:
                warm = False
                self.place = self._slots.acquire(self._session_id)
                self._changed.notify_all()
                if self.place:
                    self._changed.wait(ASK_SECONDS)
                    return True
        if warm:
            # Marked as training: a slot or a place taken by a click meanwhile is not lost while
            # a trace in progress finishes (tens of seconds on a loaded 2-core machine).
            with self._slots.training(self._session_id):
                self._trace_steps(until_busy=True)
            return True
        with self._slots.training(self._session_id):
            # Outside the runs lock: a round that traced would hold it for seconds, and the page's
            # reruns (session.sync_runs) would wait that long to show anything.
            self._trace_steps(until_busy=False)
        with self._slots.training(self._session_id), self._runs_lock:
            with self._changed:  # read under the runs lock: a Pause or Reset before it counts
                if self._pending_steps:
                    steps, plan, evaluate_every = self._pending_steps, self._pending_plan, 1
                elif self._training:
                    plan = self._plan
                    steps = 1 if self._first_round else _to_next_multiple(self._runs, plan.steps_per_round)
                    evaluate_every, self._first_round = plan.evaluate_every, False
                else:
                    return True
            advance_in_lockstep(self._runs, steps, plan.max_steps, evaluate_every)
            done = finished(self._runs, plan.max_steps)
            if done and not self._pending_steps:
                for run in self._runs.values():  # the maps of the last step
                    run.snapshot()
            with self._changed:
                if self._pending_steps:
                    self._pending_steps = 0
                elif done:
                    self._training = False
                self._rounds += 1
                self._changed.notify_all()
        time.sleep(YIELD_SECONDS)
        return True

    def _trace_steps(self, until_busy: bool) -> None:
        """Call each run's traced step that has not run yet once with no batch: TensorFlow traces
        and optimizes the graph (seconds on a 2-core CPU) and no weight changes. `until_busy`: the
        warm-up before Train, which gives way as soon as there is training to do or its page has
        gone (a trace under way cannot be cut short: it ends first). Without the runs
        lock: a call on no batch reads and writes no variable, and holding the lock for seconds
        would keep a Train, Pause or sidebar change waiting (a step replaced meanwhile by a new
        loss is traced in vain)."""
        for run in list(self._runs.values()):
            if (until_busy and (self.busy or not self._page_open())) or self._stop:
                return
            step = _step_of(run)
            if step not in _traced:
                # Run's own attributes: the training set is passed in, as Run.advance does.
                step(run._train_x, run._train_masks, np.zeros((0, run.config.batch_size), np.int32))
                _traced.add(step)


def _step_of(run: Run):
    """The run's traced train step (replaced when a new loss or option needs a new trace)."""
    return run._train_step


def stop_all(timeout: float | None = None) -> None:
    """Stop every worker of the process (tests: no thread outlives a test)."""
    for worker in list(_workers):
        worker.stop(timeout)
