"""Training beside the page: one worker thread per browser session trains the session's runs in
lockstep and publishes immutable snapshots; the page only reads the latest snapshot and draws it.

The page's controls (Train, Pause, Step, Reset) are commands: they set a flag and return at once,
and the worker applies them between two rounds of steps. Changes of a run's configuration are
made by the page under the session's lock (`lock`), which the worker holds during a round, so
they too land between two rounds and `Run.reconfigure` marks them at the exact step.

A worker thread exists only while there is work: it ends when the runs pause, finish or fail,
and when nobody has read its snapshots for `idle_seconds` (the browser tab was closed), freeing
its training slot; the runs then go with the session. No streamlit here: the page is explorer/ui.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from explorer.training import Run, RunState

# A training session whose page has not read a snapshot for this long is gone (tab closed). Long
# enough for a hidden tab, whose timers Chromium slows to one a minute after five minutes.
IDLE_SECONDS = 90.0
WAIT_POLL_SECONDS = 0.25  # a session waiting for a training slot asks again this often
STALE_SECONDS = 10.0

log = logging.getLogger(__name__)


class TrainingSlots:
    """A cap on how many sessions train at once, shared by the whole server process.

    Every training step uses all cores, so N sessions training together each run N times slower.
    The first `size` sessions that ask hold a slot until they release it; the others wait in order
    of arrival. A slot whose holder stopped asking is taken back `stale_seconds` after its last ask
    (a worker that died without releasing), except while its holder is inside `training()`."""

    def __init__(self, size: int, stale_seconds: float = STALE_SECONDS, clock: Callable[[], float] = time.monotonic):
        self.size = size
        self.stale_seconds = stale_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._holders: dict[str, float] = {}  # session id → last ask
        self._waiting: dict[str, float] = {}  # session id → last ask, in order of arrival
        self._training: set[str] = set()  # holders inside training(): never stale

    def acquire(self, session_id: str) -> int:
        """0 if `session_id` holds a slot (now or already); else its place in the queue (1 = next).
        Sessions are served in order of arrival; calling again keeps the place."""
        with self._lock:
            now = self._clock()
            for table in (self._holders, self._waiting):
                for sid, seen in list(table.items()):
                    if now - seen > self.stale_seconds and sid not in self._training:
                        del table[sid]
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
        """Around a round of steps: the slot is not taken back while it trains, however long that
        takes (tracing on a loaded CPU), and its staleness counts from the end of the round."""
        with self._lock:
            self._training.add(session_id)
        try:
            yield
        finally:
            with self._lock:
                self._training.discard(session_id)
                if session_id in self._holders:
                    self._holders[session_id] = self._clock()

    def release(self, session_id: str) -> None:
        with self._lock:
            self._holders.pop(session_id, None)
            self._waiting.pop(session_id, None)

    def holders(self) -> int:
        with self._lock:
            return len(self._holders)


@dataclass(frozen=True)
class Schedule:
    """How the worker trains: up to `max_steps`, `steps_per_round` steps per round (one traced
    call per run), validating every `evaluate_every` steps."""

    max_steps: int = 600
    steps_per_round: int = 5
    evaluate_every: int = 20


@dataclass(frozen=True)
class Snapshot:
    """What the page draws, replaced whole: every run's state after the same round, and what the
    worker is doing."""

    states: Mapping[str, RunState] = field(default_factory=lambda: MappingProxyType({}))
    loss_ids: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    training: bool = False  # Train was pressed and the runs have not paused, finished or failed
    pending_steps: int = 0  # steps that Step asked for and the worker has not trained yet
    place: int = 0  # the session's place in the queue for a training slot (0: not waiting)
    error: str | None = None  # why the worker stopped, for the page

    @property
    def active(self) -> bool:
        """The worker has work: the page redraws at a steady rate meanwhile."""
        return self.training or self.pending_steps > 0

    @property
    def step(self) -> int:
        return min((s.step for s in self.states.values()), default=0)


def advance_together(runs: Mapping[str, Run], steps: int, max_steps: int, evaluate_every: int | None) -> None:
    """Bring every run that is not halted to one target step (the slowest run's step plus
    `steps`, at most `max_steps`): side-by-side runs stay at the same step even if a round was
    cut short between two of them (an exception in one run)."""
    active = [r for r in runs.values() if not r.state.halted]
    if not active:
        return
    target = min(min(r.state.step for r in active) + steps, max_steps)
    for run in active:
        if run.state.step < target:
            run.advance(target - run.state.step, evaluate_every)


def _finished(runs: Mapping[str, Run], max_steps: int) -> bool:
    return all(r.state.halted or r.state.step >= max_steps for r in runs.values())


class Trainer:
    """The worker of one session: trains `runs` (the session's dict, shared with the page) under
    `lock` (the session's lock, held by the page while it changes the runs)."""

    def __init__(
        self,
        session_id: str,
        runs: dict[str, Run],
        lock: threading.RLock,
        slots: TrainingSlots,
        clock: Callable[[], float] = time.monotonic,
        idle_seconds: float = IDLE_SECONDS,
    ):
        self.session_id = session_id
        self._runs = runs
        self._lock = lock
        self._slots = slots
        self._clock = clock
        self.idle_seconds = idle_seconds
        self._changed = threading.Condition()  # guards everything below
        self._thread: threading.Thread | None = None
        self._training = False
        self._pending_steps = 0
        self._reset = self._resume = self._warm = False
        self._place = 0
        self._error: str | None = None
        self._schedule = Schedule()
        self._last_read = clock()
        self._snapshot = Snapshot()
        self.publish()

    # -- the page's side ---------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        """The latest snapshot; reading it tells the worker the page is still there."""
        with self._changed:
            self._last_read = self._clock()
            return self._snapshot

    def publish(self) -> None:
        """Publish the runs' current states (the worker after each round; the page after it
        changed the runs, holding the lock, so never in the middle of a round)."""
        with self._lock:
            states = {label: run.state for label, run in self._runs.items()}
            loss_ids = {label: run.loss.loss_id for label, run in self._runs.items()}
        with self._changed:
            self._snapshot = self._with_status(Snapshot(MappingProxyType(states), MappingProxyType(loss_ids)))

    def set_schedule(self, schedule: Schedule) -> None:
        with self._changed:
            self._schedule = schedule

    def train(self) -> None:
        """Train until Pause, `max_steps` or a halt; runs the NaN guard halted carry on."""
        self._command(_training=True, _resume=True, _error=None)

    def pause(self) -> None:
        self._command(_training=False, _pending_steps=0)

    def step(self, steps: int) -> None:
        """Train exactly `steps` more steps (fewer if `max_steps` comes first), then stop."""
        with self._changed:
            steps += self._pending_steps
        self._command(_pending_steps=steps, _error=None)

    def reset(self) -> None:
        self._command(_training=False, _pending_steps=0, _reset=True, _error=None)

    def warm(self) -> None:
        """Trace the runs' train steps now, in the background, so Train starts training at once."""
        self._command(_warm=True)

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until the worker has nothing left to do and its thread has ended (tests)."""
        with self._changed:
            return self._changed.wait_for(lambda: self._thread is None, timeout)

    def close(self, timeout: float | None = None) -> bool:
        self.pause()
        return self.wait_idle(timeout)

    def _command(self, **flags) -> None:
        with self._changed:
            for name, value in flags.items():
                setattr(self, name, value)
            self._last_read = self._clock()  # a command is a sign of life too
            self._snapshot = self._with_status(self._snapshot)
            if self._thread is None and self._has_work():
                self._thread = threading.Thread(target=self._work, name=f"explorer-trainer-{self.session_id[:8]}", daemon=True)
                self._thread.start()
            self._changed.notify_all()

    # -- the worker's side -------------------------------------------------------------------

    def _with_status(self, snapshot: Snapshot) -> Snapshot:
        """`snapshot` with what the worker is doing now (hold `_changed`)."""
        return replace(snapshot, training=self._training, pending_steps=self._pending_steps, place=self._place, error=self._error)

    def _has_work(self) -> bool:
        return self._training or self._pending_steps > 0 or self._reset or self._resume or self._warm

    def _work(self) -> None:
        while True:
            try:
                while self._work_once():
                    pass
            except Exception as error:  # shown on the session's page, never only in a log
                log.exception("training worker of session %s failed", self.session_id)
                with self._changed:
                    self._training, self._pending_steps, self._reset, self._resume = False, 0, False, False
                    self._error = (
                        f"Training stopped: {type(error).__name__}: {error}. Your runs keep their weights and history: "
                        "press Train or Step to try again, or Reset to start afresh; if it happens again, reload the page."
                    )
            self._slots.release(self.session_id)
            with self._changed:
                self._place = 0
            self.publish()
            with self._changed:  # the thread ends only with no command waiting (none is lost)
                if not self._has_work():
                    self._thread = None
                    self._changed.notify_all()
                    return

    def _work_once(self) -> bool:
        """Apply the commands, then train one round if there is one to train. False: done."""
        with self._changed:
            if self._has_work() and self._clock() - self._last_read > self.idle_seconds:
                log.info("session %s stopped reading its snapshots: its worker stops", self.session_id)
                self._training, self._pending_steps = False, 0
            reset, resume, warm = self._reset, self._resume, self._warm
            self._reset = self._resume = self._warm = False
            schedule, stepping = self._schedule, self._pending_steps > 0
            steps = self._pending_steps if stepping else schedule.steps_per_round if self._training else 0
        if reset or resume:
            with self._lock:
                for run in self._runs.values():
                    run.reset() if reset else run.resume()
        if warm:
            # Tracing only builds the graph (a second time it is a cache hit); without the lock, so
            # the page can change the runs meanwhile. Run keeps its traced step private.
            with self._lock:
                functions = [run._train_step for run in self._runs.values()]
            for train_step in functions:
                train_step.get_concrete_function()
        if not steps:
            with self._lock:  # the maps show the weights the runs stopped at
                for run in self._runs.values():
                    run.snapshot()
            with self._changed:
                return self._has_work()  # a command that came meanwhile: another turn
        place = self._slots.acquire(self.session_id)
        with self._changed:
            self._place = place
            self._snapshot = self._with_status(self._snapshot)
            if place:
                self._changed.wait(WAIT_POLL_SECONDS)  # a Pause wakes it at once
                return True
        with self._slots.training(self.session_id), self._lock:
            advance_together(self._runs, steps, schedule.max_steps, 1 if stepping else schedule.evaluate_every)
            finished = _finished(self._runs, schedule.max_steps)
        with self._changed:
            if stepping:
                self._pending_steps = 0 if finished else max(self._pending_steps - steps, 0)
            if finished:
                self._training = False
        self.publish()
        return True
