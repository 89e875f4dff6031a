"""The headless comparison's runs as Ray tasks: `python -m explorer.compare --ray [ADDRESS]`.

Ray is optional (`pip install -r requirements-ray.txt`). Each run is one task with one CPU and one
TensorFlow thread (compare.THREADS_PER_RUN, given through the task's environment as compare's own
worker pool does), so a run gives the same numbers on Ray as in compare.run_all. The training data
goes into the object store once and every task reads it from there.

On a cluster (an ADDRESS), the `explorer` package is shipped with the job (Ray's `py_modules`),
so the runs train with the code here, the code whose fingerprint the results carry; the cluster's
Python needs the packages of requirements.txt at the same versions. A cluster with Ray's token
authentication (on by default since Ray 2.5x) also needs RAY_AUTH_MODE=token in this process's
environment, with the cluster's token in RAY_AUTH_TOKEN or ~/.ray/auth_token.

A local instance (no ADDRESS) writes ~/.ray/auth_token when there is none and sets RAY_AUTH_MODE in
this process's environment: Ray does that on every `ray.init()` that starts a cluster.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np

from explorer import compare, data
from explorer.compare import Outcome, TrainingData

PACKAGE = Path(__file__).resolve().parent
# A local instance's object store: the training data (put once) and the outcomes (small) with room
# to spare; Ray's default (30 % of the memory) would take far more shared memory than a comparison uses.
_STORE_MINIMUM = 128 * 1024**2
_REASON_LENGTH = 300  # characters of an error kept as a failed run's reason


def _train(task: tuple, subject: TrainingData) -> Outcome:
    """One run, in a Ray worker (`subject` arrives resolved from the object store)."""
    return compare.train_one(*task, subject)


def _store_bytes(subject: TrainingData) -> int:
    arrays = [getattr(subject.dataset, f.name) for f in dataclasses.fields(subject.dataset)]
    size = sum(a.nbytes for a in arrays if isinstance(a, np.ndarray))
    return max(_STORE_MINIMUM, 2 * size + 64 * 1024**2)


def _short(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    text = f"{type(error).__name__}: {text[0] if text else ''}".rstrip(": ")
    return text if len(text) <= _REASON_LENGTH else text[: _REASON_LENGTH - 1] + "…"


def _reason(error: BaseException, ray) -> str:
    """Why a task gave no outcome, short: a run that raised reads as in compare.run_all."""
    exceptions = ray.exceptions
    if isinstance(error, exceptions.RayTaskError):  # the run raised: its own exception
        cause = error.cause
        return f"{type(cause).__name__}: {cause}" if cause is not None else _short(error)
    lost = (exceptions.WorkerCrashedError, exceptions.OutOfMemoryError, exceptions.NodeDiedError, exceptions.LocalRayletDiedError)
    if isinstance(error, lost):
        return f"its Ray worker died, also on its one retry (out of memory, or killed): {_short(error)}"
    return f"Ray could not run it: {_short(error)}"


def run_on_ray(tasks: list[tuple], subject: data.Dataset | TrainingData, address: str | None = None, progress=print) -> list[Outcome]:
    """Train every (variant, seed, steps, learning_rate) task as a Ray task; outcomes in the order
    of `tasks`, as compare.run_all gives them.

    Uses the Ray instance this process is already connected to; otherwise connects to the cluster
    at `address`, or without one starts a local instance with one CPU per core (and shuts down
    only what it started). A run that raises is a failed run with the exception as its reason; a
    run whose worker dies (out of memory, killed) is tried once more, and lost twice is a failed
    run. The sweep goes on either way."""
    try:
        import ray
    except ImportError as error:
        raise SystemExit(f"Ray is not installed ({error}): pip install -r requirements-ray.txt") from None

    subject = compare.training_data(subject)
    report = compare.Progress(len(tasks), progress)
    started = not ray.is_initialized()
    if started:
        if address:
            # The package goes with the job (Ray uploads local code at the job level only); the
            # tasks inherit it.
            ray.init(address=address, runtime_env={"py_modules": [str(PACKAGE)]}, log_to_driver=False, logging_level=logging.WARNING)
        else:
            ray.init(
                address="local",  # a new instance, even where a `ray start` cluster runs (ray.init() would join it)
                num_cpus=compare.default_workers(),
                include_dashboard=False,
                object_store_memory=_store_bytes(subject),
                log_to_driver=False,  # TensorFlow's start-up lines from every worker
                logging_level=logging.WARNING,
            )
    refs: dict = {}
    try:
        # Merged with the job's runtime environment (its py_modules stay).
        runtime_env = {"env_vars": {name: str(compare.THREADS_PER_RUN) for name in compare.THREAD_VARIABLES}}
        train = ray.remote(num_cpus=1, max_retries=1, retry_exceptions=False, runtime_env=runtime_env)(_train)
        shared = ray.put(subject)  # once; each task gets the reference
        refs = {train.remote(task, shared): i for i, task in enumerate(tasks)}
        outcomes: list[Outcome | None] = [None] * len(tasks)
        pending = list(refs)
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            for ref in ready:
                i = refs.pop(ref)
                variant, seed = tasks[i][:2]
                try:
                    outcome = ray.get(ref)
                except ray.exceptions.RayError as error:
                    outcome = compare.lost(variant, seed, _reason(error, ray))
                if outcome.prediction is not None:
                    # Ray hands numpy arrays back as read-only views of its shared memory, which
                    # go when Ray shuts down: keep a copy of our own.
                    outcome = dataclasses.replace(outcome, prediction=np.array(outcome.prediction))
                outcomes[i] = outcome
                report(outcome)
        return outcomes
    finally:
        for ref in refs:  # interrupted: the runs not collected yet are not wanted any more
            try:
                ray.cancel(ref)
            except Exception:  # Ray itself is gone: nothing is left to cancel
                pass
        if started:
            ray.shutdown()
