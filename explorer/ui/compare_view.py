"""Which loss for this data? The command line's comparison (explorer.compare) run by the page on its
active dataset, the toy set or the user's pairs, in the background (explorer/ui/compare_job.py):
it waits for a training slot as Train does, shows its progress while the live runs go on, and when
done the same tables, charts, predictions and report as the command line.

One comparison per session, in st.session_state[JOB]. It belongs to the dataset it was started on:
when the page's dataset changes it is cancelled and its results are dropped, as the live runs
restart on new data."""

from __future__ import annotations

import streamlit as st

from explorer import compare, html_report, losses, weights
from explorer.data import Dataset
from explorer.run_config import NORMALIZATIONS
from explorer.ui import capacity, session
from explorer.ui.compare_job import ComparisonJob

JOB = "comparison"
LOSSES, SCHEMES, SEEDS, STEPS = "compare_losses", "compare_schemes", "compare_seeds", "compare_steps"
DEFAULT_LOSSES = ("ce", "dice", "focal_tversky")
DEFAULT_SCHEMES = ("none", "balanced")
PROGRESS_SECONDS = 1.0


def show(dataset: Dataset, counts: weights.ClassCounts, visible: bool = True) -> None:
    """The section when `visible` (its tab is open); else only what keeps a running comparison
    alive: a fragment without elements that tells it a page still reads it, and brings the whole
    page back when it ends."""
    job = _job_on(dataset)
    # Read once: a job that ends while the section draws must not leave Start disabled over its
    # results (the fragment's next tick brings the page back when it has ended).
    running = job is not None and job.running
    if not visible:
        if running:
            st.fragment(_heartbeat, run_every=PROGRESS_SECONDS)(job)
        return
    st.caption("Which loss for this data? The comparison trains each loss and weighting on the page's dataset, in the background.")
    plan = _settings()
    st.button(
        "Start", icon=":material/play_arrow:", type="primary", key="compare_start", on_click=_start, args=(dataset, counts),
        disabled=plan is None or running,
    )
    if job is None:
        return
    if running:
        st.fragment(_progress, run_every=PROGRESS_SECONDS)(job)
    else:
        _results(job)


def _job_on(dataset: Dataset) -> ComparisonJob | None:
    """The session's comparison if it was started on `dataset`; one on other data is cancelled and
    dropped (a comparison of the toy set is no answer for uploaded data)."""
    job = st.session_state.get(JOB)
    if job is not None and job.subject.dataset is not dataset:
        job.cancel()
        del st.session_state[JOB]
        return None
    if job is not None:
        job.seen()
    return job


def _settings() -> compare.Plan | None:
    """The comparison's widgets and the plan they make; None, with a message under the empty
    selection, when there is nothing to compare."""
    loss_ids = st.multiselect("Losses", list(losses.REGISTRY), default=DEFAULT_LOSSES, format_func=lambda i: losses.REGISTRY[i].name, key=LOSSES, persist_state="page")
    if not loss_ids:
        st.error("Choose at least one loss to compare.", icon=":material/block:")
    schemes = st.multiselect(
        "Class weights (for the losses that take them)", compare.WEIGHT_SCHEMES, default=DEFAULT_SCHEMES,
        format_func=lambda s: weights.SCHEMES[s].name, key=SCHEMES, persist_state="page",
    )
    if not schemes:
        st.error("Choose at least one weighting scheme (None trains without class weights).", icon=":material/block:")
    left, right = st.columns(2)
    seeds = left.number_input("Seeds", 1, 5, 2, key=SEEDS, persist_state="page", help="Each variant trains once per seed, from that seed's initial weights on that seed's batches.")
    steps = right.number_input("Steps per run", 20, 1000, 150, step=10, key=STEPS, persist_state="page")
    plan = _plan(loss_ids, schemes, seeds, steps)
    if plan is not None:
        runs, variants = len(plan.tasks()), len(plan.variants())
        baseline = "" if compare.BASELINE in plan.losses else " (with cross-entropy added: the paired differences are against it)"
        st.caption(
            f"{runs} run{_s(runs)}: {variants} variant{_s(variants)}{baseline} × {plan.seeds} seed{_s(plan.seeds)}, {plan.steps} steps each, "
            f"U-Net with {NORMALIZATIONS[plan.normalizations[0]]}, learning rate {plan.learning_rate:g}, as `{compare.COMMAND}` trains them. "
            "They train one at a time in a separate process, so the live runs go on; the comparison takes this session's training "
            "slot (its live runs share it). Switching the page's data cancels it."
        )
    return plan


def _s(count: int) -> str:
    return "s" if count != 1 else ""


def _plan(loss_ids, schemes, seeds, steps) -> compare.Plan | None:
    if not loss_ids or not schemes:
        return None
    return compare.Plan(tuple(loss_ids), tuple(schemes), steps=int(steps), seeds=int(seeds))


def _start(dataset: Dataset, counts: weights.ClassCounts) -> None:
    state = st.session_state
    plan = _plan(state[LOSSES], state[SCHEMES], state[SEEDS], state[STEPS])  # the widgets' values at the click
    if plan is None:
        return
    # The command the report names trains these very runs on the toy set only: name an upload.
    data = None if dataset is session.toy_dataset() else f"{dataset.name}, uploaded to the page"
    subject = compare.TrainingData.of(dataset, counts)
    state[JOB] = ComparisonJob(plan, subject, plan.command(), data, capacity.slots(), capacity.session_id()).start()


def _heartbeat(job: ComparisonJob) -> None:
    job.seen()
    if not job.running:
        st.rerun()  # the whole page: the fragment stops ticking


def _progress(job: ComparisonJob) -> None:
    _heartbeat(job)  # at the end, the whole page: the results take this place
    if job.cancelling:
        st.info("Cancelling: the run in progress stops at its next validation; the finished runs are kept.", icon=":material/cancel:")
    elif job.place:
        st.info(
            f"Waiting for a training slot: every slot is taken by other sessions; this comparison is place {job.place} in the queue. "
            "The comparison starts by itself when one frees.",
            icon=":material/hourglass_top:",
        )
    progress = job.progress
    if progress is not None:
        last = progress.last or "the first run is training (its worker process starts first)"
        st.progress(progress.done / progress.total, text=f"{progress.done} of {progress.total} runs done · {last} · {progress.time_left()}")
    st.button("Cancel", icon=":material/stop:", key="compare_cancel", on_click=job.cancel, disabled=job.cancelling)


def _results(job: ComparisonJob) -> None:
    if job.error:
        st.error(
            f"The comparison stopped: {job.error}. Nothing it trained is kept. Press Start to try again; if it stops the same way, "
            "the server may be short of memory or processes (ask whoever runs it), or it is a bug: report this message.",
            icon=":material/error:",
        )
        return
    if job.outcomes is None:
        st.warning("Cancelled before it started: nothing was trained.", icon=":material/cancel:")
        return
    cancelled = sum(o.failed == compare.CANCELLED for o in job.outcomes)
    if cancelled:
        st.warning(
            f"Cancelled: {len(job.outcomes) - cancelled} of {len(job.outcomes)} runs finished. The others are listed as failed "
            "(cancelled) and left out of every mean.",
            icon=":material/cancel:",
        )
    st.markdown(compare.report(job.results, job.subject, details=True))
    predictions = compare.predictions(job.outcomes)
    if any(o.failed is None for o in job.outcomes):
        for normalization in job.plan.normalizations:
            st.plotly_chart(html_report.iou_bars(job.outcomes, normalization, job.subject), key=f"compare_iou_{normalization}")
            st.plotly_chart(html_report.curves(job.outcomes, normalization, job.subject), key=f"compare_curves_{normalization}")
            st.html(f"<style>{html_report.GALLERY_STYLE}</style>" + html_report.prediction_gallery(job.outcomes, normalization, job.subject, predictions))
    st.download_button(
        "Download the report (report.html, opens offline)", data=lambda: html_report.render(job.results, job.subject, predictions),
        file_name="report.html", mime="text/html", on_click="ignore", key="compare_report", icon=":material/download:",
    )
