"""Compare losses without a browser: train one run per loss, weighting, normalization and seed on
the toy dataset or on your own (the runs are the app's runs) and tabulate validation metrics.

    python -m explorer.compare --losses ce,focal,dice,focal_tversky,ce_dice \\
        --weights none,balanced --normalization group,none --steps 300 --seeds 5
    python -m explorer.compare --data path/to/dataset --crop 64 ...   # explorer/owndata.py
    python -m explorer.compare --ray [ADDRESS] ...                     # explorer/cluster.py

Every variant trains from the same initial weights on the same batches for a given seed. Losses
take their registry defaults; losses that use class weights run once per `--weights` scheme
(counted over the whole training set, at full resolution), the others once. A run the NaN guard
halts, or that raised, or whose worker died twice, is a failed run: it is listed with its reason
and left out of every mean, and the sweep goes on. Each variant is also compared with plain
cross-entropy on the same seeds: the mean paired difference with a 95 % interval (Student's t
over the seeds where both runs finished).

Writes `results.json` (every run, with its curves), `comparison.md`, `comparison.csv`,
`predictions.npz` (each run's prediction of one validation image) and `report.html`
(explorer/html_report.py) into `--out`; the command line is explorer/compare/command.py. The page
runs the same comparison in the background (explorer/ui/compare_view.py).
`--readme README.md` also rewrites the README's comparison section from the same results, and a
test checks that section against `docs/comparison/results.json` and the code that made it.
"""

from __future__ import annotations

import hashlib
import io
import math
import multiprocessing
import os
import re
import shlex
import sys
import threading
import time
import tokenize
import types
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from explorer import data, losses, metrics, weights
from explorer.run_config import DEFAULT_NORMALIZATION, NORMALIZATIONS
from explorer.training import Run, RunConfig

BASELINE = "ce"
COMMAND = "python -m explorer.compare"
LEARNING_RATE = 3e-3
# The schemes a comparison takes: counted once over the whole training set (not per batch).
WEIGHT_SCHEMES = tuple(s for s, spec in weights.SCHEMES.items() if spec.dataset_level)
CANCELLED = "cancelled"  # the reason of a run that a stop cut short or never started
ROOT = Path(__file__).resolve().parents[2]
# What determines a result: the training and scoring code and the dataset. The fingerprint of
# their tokens (comments and docstrings left out) is stored with every result.
RESULT_CODE = ("explorer/model.py", "explorer/run_config.py", "explorer/training.py", "explorer/losses.py", "explorer/loss_registry.py", "explorer/data.py", "explorer/weights.py", "explorer/metrics.py")
RESULT_DATA = "assets/toy"
README_BEGIN = "<!-- comparison:begin -->"
README_END = "<!-- comparison:end -->"


@dataclass(frozen=True)
class Variant:
    loss_id: str
    scheme: str  # class-weighting scheme; "none" for losses that take no class weights
    normalization: str

    @property
    def name(self) -> str:
        return self.loss_id if not losses.REGISTRY[self.loss_id].uses_class_weights else f"{self.loss_id} ({self.scheme})"


@dataclass(frozen=True)
class Outcome:
    """One run. A failed run has `failed` (the NaN guard's message, or why its worker was lost)
    and no scores."""

    variant: Variant
    seed: int
    step: int
    seconds: float
    logit_scale: float  # largest |logit| at the last validation snapshot
    failed: str | None = None
    iou: tuple[float, ...] | None = None
    dice: tuple[float, ...] | None = None
    recall: tuple[float, ...] | None = None
    mean_iou: float | None = None
    pixel_accuracy: float | None = None
    loss_curve: tuple[tuple[int, float], ...] = ()  # (step, mean training loss since the last point)
    iou_curve: tuple[tuple[int, tuple[float, ...]], ...] = ()  # (step, validation IoU per class)
    # The predicted classes of the example validation image (TrainingData.example); kept out of
    # results.json (an image), written to predictions.npz.
    prediction: np.ndarray | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, eq=False)
class TrainingData:
    """What every run of a comparison trains and is scored on: the dataset, the class counts the
    weighting schemes use (over the full-resolution training masks: a dataset trained on crops
    counts its images, not its crops) and the validation image whose prediction the report shows
    (the one with the most pixels of the rarest class)."""

    dataset: data.Dataset
    counts: weights.ClassCounts
    example: int

    @classmethod
    def of(cls, dataset: data.Dataset, counts: weights.ClassCounts | None = None) -> "TrainingData":
        if counts is None:
            counts = weights.count_pixels(dataset.train_masks, dataset.num_classes, ignore_index=dataset.ignore_index)
        per_image = (dataset.val_masks == _rarest(counts)).reshape(len(dataset.val_masks), -1).sum(axis=1)
        return cls(dataset, counts, int(np.argmax(per_image)))

    @property
    def rarest(self) -> int:
        return _rarest(self.counts)


def _rarest(counts: weights.ClassCounts) -> int:
    """The rarest class that has pixels."""
    return int(np.argmin(np.where(counts.pixels > 0, counts.pixels, np.iinfo(np.int64).max)))


def training_data(subject: data.Dataset | TrainingData) -> TrainingData:
    """A dataset's TrainingData (counts over its training masks); a TrainingData as it is."""
    return subject if isinstance(subject, TrainingData) else TrainingData.of(subject)


def variants(loss_ids, schemes, normalizations) -> list[Variant]:
    unknown = [i for i in loss_ids if i not in losses.REGISTRY]
    if unknown:
        raise SystemExit(f"unknown loss {unknown[0]!r}; choose from {', '.join(losses.REGISTRY)}")
    out = []
    for normalization in normalizations:
        for loss_id in loss_ids:
            uses = losses.REGISTRY[loss_id].uses_class_weights
            for scheme in schemes if uses else ("none",):
                if loss_id == "weighted_ce" and scheme == "none":
                    continue  # that is plain cross-entropy (weighted_ce with w = 1 is ce)
                out.append(Variant(loss_id, scheme, normalization))
    return list(dict.fromkeys(out))


@dataclass(frozen=True)
class Plan:
    """What a comparison trains, as the command line or the page asks for it: every loss under
    every scheme it takes, per normalization, for each seed."""

    losses: tuple[str, ...]  # as asked for; `loss_ids` adds plain cross-entropy
    schemes: tuple[str, ...]
    normalizations: tuple[str, ...] = (DEFAULT_NORMALIZATION,)
    steps: int = 300
    seeds: int = 5
    learning_rate: float = LEARNING_RATE

    @property
    def loss_ids(self) -> list[str]:
        """The losses trained: plain cross-entropy first when it was not asked for (the paired
        differences need it)."""
        return list(self.losses) if BASELINE in self.losses else [BASELINE, *self.losses]

    def variants(self) -> list[Variant]:
        return variants(self.loss_ids, self.schemes, self.normalizations)

    def tasks(self) -> list[tuple]:
        """run_all's (variant, seed, steps, learning_rate) tasks."""
        return [(v, seed, self.steps, self.learning_rate) for v in self.variants() for seed in range(self.seeds)]

    def command(self, data_options: Sequence[str] = ()) -> str:
        """The command line that trains these runs."""
        options = [f"--losses={','.join(self.losses)}", f"--weights={','.join(self.schemes)}", f"--normalization={','.join(self.normalizations)}",
                   f"--steps={self.steps}", f"--seeds={self.seeds}", f"--lr={self.learning_rate:g}"]
        return f"{COMMAND} {shlex.join([*data_options, *options])}"

    def results(self, command: str, code: str, outcomes: list[Outcome], data: str | None = None) -> dict:
        """What results.json holds and report() and html_report.render() take."""
        settings = {"losses": self.loss_ids, "weights": list(self.schemes), "normalizations": list(self.normalizations), "steps": self.steps,
                    "seeds": list(range(self.seeds)), "learning_rate": self.learning_rate, **({"data": data} if data else {})}
        return {"command": command, "settings": settings, "code": code, "runs": [outcome_json(o) for o in outcomes]}


CURVE_POINTS = 20  # validation snapshots per run, for the report's curves


def train_one(variant: Variant, seed: int, steps: int, learning_rate: float, subject: data.Dataset | TrainingData, should_stop=lambda: False) -> Outcome:
    """One run; `should_stop` is asked between the pieces it trains in (a stopped run is a
    failed run, CANCELLED)."""
    subject = training_data(subject)
    dataset = subject.dataset
    class_weights = tuple(weights.class_weights(subject.counts, variant.scheme).weights)
    config = RunConfig(
        loss_id=variant.loss_id,
        class_weights=class_weights,
        seed=seed,
        learning_rate=learning_rate,
        normalization=variant.normalization,
    )
    run = Run(config, dataset)
    start = time.perf_counter()
    # Trained in pieces with a validation snapshot after each, for the curves; the batches depend
    # on the step only, so the result is that of one call.
    piece = max(1, math.ceil(steps / CURVE_POINTS))
    loss_curve, iou_curve = [], []
    state = run.state
    while state.step < steps and not state.halted:
        if should_stop():
            return lost(variant, seed, CANCELLED)
        before = len(state.loss_values)
        state = run.advance(min(piece, steps - state.step), evaluate_every=1)
        if len(state.loss_values) > before:
            loss_curve.append((state.step, float(np.mean(state.loss_values[before:]))))
        if not state.halted and state.latest.step == state.step:
            iou_curve.append((state.step, tuple(map(float, state.latest.scores.iou))))
    seconds = time.perf_counter() - start
    latest = state.latest
    common = dict(variant=variant, seed=seed, step=state.step, seconds=seconds, logit_scale=latest.logit_scale,
                  loss_curve=tuple(loss_curve), iou_curve=tuple(iou_curve))
    if state.halted:
        return Outcome(**common, failed=state.halted)
    s = latest.scores
    return Outcome(
        **common,
        iou=tuple(map(float, s.iou)),
        dice=tuple(map(float, s.dice)),
        recall=tuple(map(float, s.recall)),
        mean_iou=float(s.mean_iou),
        pixel_accuracy=float(s.pixel_accuracy),
        prediction=latest.probabilities[subject.example].argmax(-1).astype(np.uint8),
    )


def lost(variant: Variant, seed: int, reason: str) -> Outcome:
    """A run that produced no result at all (its worker died, an exception): a failure."""
    return Outcome(variant, seed, step=0, seconds=float("nan"), logit_scale=float("nan"), failed=reason)


# -- running the runs: each in a worker process with one thread -----------------------------------

# One TensorFlow thread per run: a reduction split over more threads adds in another order, and
# over hundreds of steps the last bits grow into other results. With one thread a run gives the
# same numbers whatever --workers is and however many cores the machine has. Given to the workers
# through the environment, which TensorFlow reads when it starts: a spawned worker first imports
# its parent's main module, and when that is a script that starts TensorFlow (a Streamlit page),
# the thread counts can no longer be set in code.
THREADS_PER_RUN = 1
THREAD_VARIABLES = ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")
_environment = threading.Lock()  # the page's sessions start pools from several threads
_worker_data: TrainingData | None = None
_worker_stop = None  # the pool's stop event: set, the run in flight ends at its next piece


def _init_worker(subject: TrainingData, stop) -> None:
    global _worker_data, _worker_stop
    _worker_data, _worker_stop = subject, stop


def _train_in_worker(task: tuple) -> Outcome:
    return train_one(*task, _worker_data, should_stop=_worker_stop.is_set)


@contextmanager
def _worker_start(threads: int) -> Iterator[None]:
    """What workers spawned inside this block start with: `threads` TensorFlow threads, and no
    main module to run. A spawned worker first runs its parent's main script: under Streamlit the
    whole page (seconds, and the page's memory), which a run never needs."""
    with _environment:
        saved = {name: os.environ.get(name) for name in THREAD_VARIABLES}
        os.environ.update({name: str(threads) for name in THREAD_VARIABLES})
        main, bare = sys.modules["__main__"], types.ModuleType("__main__")  # no __file__: nothing to run
        sys.modules["__main__"] = bare
        try:
            yield
        finally:
            if sys.modules["__main__"] is bare:  # else a new script run of the page installed its own meanwhile
                sys.modules["__main__"] = main
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


def default_workers() -> int:
    """One worker per core: each run has one thread, and two runs on one core each take twice as long."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


class Progress:
    """Runs done, the last one's result and the time left; a line for each finished run."""

    def __init__(self, total: int, print_line=print):
        self.total, self.done, self.start, self.print_line = total, 0, time.perf_counter(), print_line
        self.last = ""  # the last finished run and its result
        self.last_at = self.start

    def time_left(self) -> str:
        """From the mean time of the runs so far, counting down between them."""
        if not self.done:
            return "time left known after the first run"
        now = time.perf_counter()
        left = max(0.0, (self.last_at - self.start) / self.done * (self.total - self.done) - (now - self.last_at))
        return f"about {left / 60:.0f} min left" if left >= 90 else f"about {left:.0f} s left"

    def __call__(self, outcome: Outcome) -> None:
        self.done += 1
        self.last_at = time.perf_counter()
        reason = outcome.failed.removeprefix("The run is paused: ").split(". ")[0] if outcome.failed else ""
        status = f"FAILED ({reason})" if outcome.failed else f"mean IoU {outcome.mean_iou:.3f}"
        self.last = f"{outcome.variant.name}, {outcome.variant.normalization}, seed {outcome.seed}: {status} ({outcome.seconds:.0f} s)"
        width = 20
        bar = "#" * round(width * self.done / self.total) + "." * (width - round(width * self.done / self.total))
        self.print_line(f"[{bar}] {self.done}/{self.total} {self.last}; {self.time_left()}")


STOP_SECONDS = 0.5  # how often run_all asks should_stop


def run_all(tasks: list[tuple], subject: data.Dataset | TrainingData, workers: int = 1, progress=print, should_stop=None) -> list[Outcome]:
    """Train every (variant, seed, steps, learning_rate) task in `workers` processes (spawned:
    TensorFlow does not survive a fork); outcomes in the order of `tasks`. `progress` gets a line
    for each finished run, or is a Progress the caller reads.

    A run that raises is a failed run with the exception as its reason. A worker process that dies
    (out of memory, killed) breaks the pool: the runs it took down are tried once more in a new
    pool, and a run lost twice is a failed run. The sweep goes on either way.

    `should_stop`, asked every STOP_SECONDS, ends the sweep early: the runs not started are
    cancelled, the runs in flight stop at their next piece, and those are failed runs with the
    reason CANCELLED; the finished runs are returned as they are."""
    subject = training_data(subject)
    report = progress if isinstance(progress, Progress) else Progress(len(tasks), progress)
    stopping = should_stop or (lambda: False)
    outcomes: list[Outcome | None] = [None] * len(tasks)
    losses_of = dict.fromkeys(range(len(tasks)), 0)
    pending = list(range(len(tasks)))
    context = multiprocessing.get_context("spawn")
    stop = context.Event()
    while pending and not stopping():
        with ProcessPoolExecutor(max(1, workers), mp_context=context, initializer=_init_worker, initargs=(subject, stop)) as pool:
            with _worker_start(THREADS_PER_RUN):  # the workers start while the tasks are submitted
                futures = {pool.submit(_train_in_worker, tasks[i]): i for i in pending}
            pending, running = [], set(futures)
            while running:
                done, running = wait(running, timeout=STOP_SECONDS if should_stop else None, return_when=FIRST_COMPLETED)
                if not stop.is_set() and stopping():
                    stop.set()
                    pool.shutdown(wait=False, cancel_futures=True)
                for future in done:
                    if future.cancelled():
                        continue  # never started: CANCELLED below
                    i = futures[future]
                    variant, seed = tasks[i][:2]
                    try:
                        outcomes[i] = future.result()
                    except BrokenProcessPool:
                        losses_of[i] += 1
                        if losses_of[i] < 2:
                            pending.append(i)
                            continue
                        outcomes[i] = lost(variant, seed, "its worker process died twice (out of memory, or killed)")
                    except Exception as error:  # a bug or a resource error in one run: the sweep goes on
                        outcomes[i] = lost(variant, seed, f"{type(error).__name__}: {error}")
                    report(outcomes[i])
    return [outcome or lost(*task[:2], CANCELLED) for outcome, task in zip(outcomes, tasks)]


# -- summaries -----------------------------------------------------------------------------------

# Two-sided 95 % quantiles of Student's t for 1..30 degrees of freedom (standard tables).
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
         2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


def t_quantile_975(dof: int) -> float:
    return _T975[dof - 1] if dof <= len(_T975) else 1.96


def mean_interval(values) -> tuple[float, float]:
    """Mean and the half-width of its 95 % interval (Student's t); half-width NaN for one value."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) < 2:
        return (float(values[0]) if len(values) else float("nan")), float("nan")
    return float(values.mean()), float(t_quantile_975(len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values)))


def finished(outcomes: list[Outcome], variant: Variant) -> list[Outcome]:
    return [o for o in outcomes if o.variant == variant and o.failed is None]


def paired_differences(outcomes: list[Outcome], variant: Variant, metric) -> np.ndarray:
    """metric(variant's run) − metric(plain CE's run) for each seed where both finished."""
    baseline = {o.seed: o for o in finished(outcomes, Variant(BASELINE, "none", variant.normalization))}
    return np.array([metric(o) - metric(baseline[o.seed]) for o in finished(outcomes, variant) if o.seed in baseline])


def all_background_scores(dataset: data.Dataset) -> metrics.Scores:
    masks = dataset.val_masks
    return metrics.scores(metrics.confusion_matrix(masks, np.zeros_like(masks), dataset.num_classes, ignore_index=dataset.ignore_index))


# -- tables --------------------------------------------------------------------------------------


def _pm(values) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.3f}"  # one run has no spread to show
    return f"{np.nanmean(values):.3f} ± {np.nanstd(values):.3f}"


def _measured(summary, values, spec: str) -> str:
    """summary() of the runs that measured it, "–" if none did (a run lost or cancelled before it
    trained has NaN)."""
    values = [v for v in values if not math.isnan(v)]
    return format(summary(values), spec) if values else "–"


def _interval(values: np.ndarray) -> str:
    if len(values) == 0:
        return "–"
    mean, half = mean_interval(values)
    return f"{mean:+.3f} [{mean - half:+.3f}, {mean + half:+.3f}]" if np.isfinite(half) else f"{mean:+.3f}"


def scores_table(outcomes: list[Outcome], normalization: str, dataset: data.Dataset) -> str:
    header = ["loss", "finished", *[f"IoU {n}" for n in dataset.class_names], "mean IoU", "pixel accuracy", "largest logit", "s / run"]
    body = []
    for variant in dict.fromkeys(o.variant for o in outcomes if o.variant.normalization == normalization):
        runs = [o for o in outcomes if o.variant == variant]
        done = finished(outcomes, variant)
        body.append(
            [variant.name, f"{len(done)}/{len(runs)}"]
            + [_pm([o.iou[c] for o in done]) for c in range(dataset.num_classes)]
            + [_pm([o.mean_iou for o in done]), _pm([o.pixel_accuracy for o in done])]
            + [_measured(np.median, [o.logit_scale for o in runs], ".3g"), _measured(np.mean, [o.seconds for o in runs], ".0f")]
        )
    base = all_background_scores(dataset)
    body.append(["all background (for scale)", "–", *[f"{v:.3f}" for v in base.iou], f"{base.mean_iou:.3f}", f"{base.pixel_accuracy:.3f}", "–", "–"])
    return markdown(header, body)


def per_class_table(outcomes: list[Outcome], normalization: str, dataset: data.Dataset, metric: str) -> str:
    """Dice or recall per class, mean ± std over the finished runs."""
    header = ["loss", *[f"{metric} {n}" for n in dataset.class_names]]
    body = []
    for variant in dict.fromkeys(o.variant for o in outcomes if o.variant.normalization == normalization):
        done = finished(outcomes, variant)
        body.append([variant.name] + [_pm([getattr(o, metric)[c] for o in done]) for c in range(dataset.num_classes)])
    return markdown(header, body)


def paired_table(outcomes: list[Outcome], normalization: str, subject: data.Dataset | TrainingData) -> str:
    subject = training_data(subject)
    dataset, rare = subject.dataset, subject.rarest
    header = ["loss", "pairs", "Δ mean IoU [95 % interval]", f"Δ IoU {dataset.class_names[rare]} [95 % interval]"]
    body = []
    for variant in dict.fromkeys(o.variant for o in outcomes if o.variant.normalization == normalization):
        if variant == Variant(BASELINE, "none", normalization):
            continue
        mean_iou = paired_differences(outcomes, variant, lambda o: o.mean_iou)
        rare_iou = paired_differences(outcomes, variant, lambda o: o.iou[rare])
        body.append([variant.name, str(len(mean_iou)), _interval(mean_iou), _interval(rare_iou)])
    return markdown(header, body)


def failures(outcomes: list[Outcome]) -> list[str]:
    return [f"{o.variant.name}, {o.variant.normalization}, seed {o.seed}: {o.failed}" for o in outcomes if o.failed]


def markdown(header: list[str], body: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return "\n".join(lines) + "\n"


def report(results: dict, subject: data.Dataset | TrainingData, details: bool = False) -> str:
    """The Markdown of a comparison: per normalization, the scores and the paired differences
    (with `details`, Dice and recall per class too); then every failed run. The README's section
    is exactly this text without details."""
    subject = training_data(subject)
    dataset = subject.dataset
    outcomes = outcomes_from_json(results)
    s = results["settings"]
    parts = [
        f"Measured with `{results['command']}` ({s['steps']} steps, {len(s['seeds'])} seed{'s' if len(s['seeds']) != 1 else ''}, lr {s['learning_rate']:g}, "
        f"batch 16; validation set; mean ± std over the runs that finished). Code fingerprint `{results['code']}`.\n"
    ]
    if s.get("data"):
        parts.append(f"\nData: {s['data']}.\n")
    for normalization in s["normalizations"]:
        parts.append(f"\n**U-Net with {NORMALIZATIONS[normalization]}**\n\n")
        parts.append(scores_table(outcomes, normalization, dataset))
        if details:
            for metric in ("dice", "recall"):
                parts.append(f"\n{metric.capitalize()} per class, {NORMALIZATIONS[normalization]}\n\n")
                parts.append(per_class_table(outcomes, normalization, dataset, metric))
        parts.append(f"\nAgainst plain cross-entropy on the same seeds, {NORMALIZATIONS[normalization]}: mean paired difference [95 % interval]\n\n")
        parts.append(paired_table(outcomes, normalization, subject))
    failed = failures(outcomes)
    parts.append("\nFailed runs (left out of every mean): " + ("none.\n" if not failed else f"{len(failed)}.\n\n" + "".join(f"- {f}\n" for f in failed)))
    return "".join(parts)


def csv_rows(outcomes: list[Outcome], class_names) -> list[list]:
    header = ["loss", "weights", "normalization", "seed", "failed", "step", "seconds", "logit_scale", "mean_iou", "pixel_accuracy"]
    header += [f"{m}_{n}" for m in ("iou", "dice", "recall") for n in class_names]
    rows = [header]
    for o in outcomes:
        per_class = [f"{v:.4f}" for m in (o.iou, o.dice, o.recall) for v in (m or (float("nan"),) * len(class_names))]
        rows.append([o.variant.loss_id, o.variant.scheme, o.variant.normalization, o.seed, o.failed or "", o.step, f"{o.seconds:.2f}", f"{o.logit_scale:.4g}",
                     "" if o.failed else f"{o.mean_iou:.4f}", "" if o.failed else f"{o.pixel_accuracy:.4f}", *per_class])
    return rows


# -- provenance ----------------------------------------------------------------------------------


def code_fingerprint(root: Path = ROOT) -> str:
    """A digest of the code and data that determine a result: the tokens of RESULT_CODE without
    comments, docstrings or layout (editing those changes no result), and the bytes of the toy set."""
    digest = hashlib.sha256()
    for name in RESULT_CODE:
        digest.update(name.encode())
        for token in _code_tokens((root / name).read_text()):
            digest.update(token.encode() + b"\0")
    for path in sorted((root / RESULT_DATA).rglob("*")):
        if path.is_file():
            digest.update(path.relative_to(root).as_posix().encode() + path.read_bytes())
    return digest.hexdigest()[:16]


def _code_tokens(source: str) -> list[str]:
    skip = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.ENCODING, tokenize.ENDMARKER}
    tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    out = []
    for i, tok in enumerate(tokens):
        if tok.type in skip:
            continue
        # A docstring: a string that is a statement of its own.
        before = next((t for t in reversed(tokens[:i]) if t.type not in (tokenize.COMMENT, tokenize.NL)), None)
        after = tokens[i + 1] if i + 1 < len(tokens) else None
        if tok.type == tokenize.STRING and (before is None or before.type in (tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.ENCODING)) and after is not None and after.type == tokenize.NEWLINE:
            continue
        out.append(tok.string)
    return out


def outcome_json(outcome: Outcome) -> dict:
    row = asdict(outcome)
    del row["prediction"]
    return row


def outcomes_from_json(results: dict) -> list[Outcome]:
    outcomes = []
    for row in results["runs"]:
        row = dict(row)
        row["variant"] = Variant(**row["variant"])
        for key in ("iou", "dice", "recall"):
            row[key] = tuple(row[key]) if row[key] is not None else None
        row["loss_curve"] = tuple((int(step), float(value)) for step, value in row.get("loss_curve", ()))
        row["iou_curve"] = tuple((int(step), tuple(values)) for step, values in row.get("iou_curve", ()))
        outcomes.append(Outcome(**row))
    return outcomes


def replace_readme_section(readme: str, section: str) -> str:
    pattern = re.compile(re.escape(README_BEGIN) + ".*?" + re.escape(README_END), re.S)
    if not pattern.search(readme):
        raise SystemExit(f"the README has no {README_BEGIN} … {README_END} section to replace")
    return pattern.sub(lambda _: f"{README_BEGIN}\n{section}{README_END}", readme)


def readme_section(readme: str) -> str:
    start, end = readme.index(README_BEGIN) + len(README_BEGIN) + 1, readme.index(README_END)
    return readme[start:end]


def prediction_key(outcome: Outcome) -> str:
    v = outcome.variant
    return f"{v.loss_id}|{v.scheme}|{v.normalization}|{outcome.seed}"


def predictions(outcomes: list[Outcome]) -> dict[str, np.ndarray]:
    """Each finished run's prediction of the example image, by prediction_key: predictions.npz."""
    return {prediction_key(o): o.prediction for o in outcomes if o.prediction is not None}
