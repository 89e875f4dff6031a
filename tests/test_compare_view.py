"""The page runs the comparison on its dataset in the background (explorer/ui/compare_view.py),
driven with streamlit.testing.v1.AppTest: it shows the command line's table and charts when done,
the live runs train meanwhile, Cancel stops it, at the cap it waits for a training slot, an empty
selection starts nothing, and what the background thread raises is shown on the page until the
data changes.

The comparison is the page's "Which loss?" section: the tests open it (only the open section
runs). AppTest runs no fragment timers: the tests wait on the job itself, then rerun the page. Each
comparison spawns a worker process that starts TensorFlow first, so only the first test trains,
two tiny runs (one seed, 20 steps); the others replace compare.run_all."""

from __future__ import annotations

import threading
import time

import pytest
from page_session import assert_no_exception, open_section, section
from page_session import open_page as open_any_page
from streamlit.testing.v1 import AppTest

from explorer import compare
from explorer.bench import walk
from explorer.ui import capacity, compare_view, sections
from explorer.ui.compare_job import ComparisonJob

JOB_SECONDS = 600  # a worker process starts, then trains: minutes on a loaded 2-core machine


def open_page() -> AppTest:
    """A new session on the page, its "Which loss?" section open."""
    return open_any_page(section=sections.WHICH_LOSS)


def start(at: AppTest, losses: list[str], schemes: list[str], steps: int = 20) -> ComparisonJob:
    at.multiselect(key=compare_view.LOSSES).set_value(losses)
    at.multiselect(key=compare_view.SCHEMES).set_value(schemes)
    at.number_input(key=compare_view.SEEDS).set_value(1)
    at.number_input(key=compare_view.STEPS).set_value(steps)
    at.run()
    assert_no_exception(at)
    at.button(key="compare_start").click().run()
    assert_no_exception(at)
    return at.session_state[compare_view.JOB]


def ended(at: AppTest, job: ComparisonJob) -> AppTest:
    assert job.wait(JOB_SECONDS), f"the comparison did not end within {JOB_SECONDS} s"
    at.run()
    assert_no_exception(at)
    return at


def wait_until(condition, what: str, seconds: float = JOB_SECONDS) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"waited {seconds} s for {what}"
        time.sleep(0.1)


def texts(elements) -> list[str]:
    return [e.value for e in elements]


def chart_ids(at: AppTest) -> list[str]:
    return [chart.proto.id for chart in at.get("plotly_chart")]


@pytest.fixture
def runs_until_stopped(monkeypatch) -> threading.Event:
    """compare.run_all that trains nothing and returns when should_stop is true (every run
    cancelled): for the tests of Cancel and of the slot, which compare_job wires to run_all. That
    run_all stops its runs is tested in test_compare.py. The event is set once it is called."""
    started = threading.Event()

    def run_all(tasks, subject, workers, progress, should_stop):
        started.set()
        while not should_stop():
            time.sleep(0.05)
        return [compare.lost(*task[:2], compare.CANCELLED) for task in tasks]

    monkeypatch.setattr(compare, "run_all", run_all)
    return started


def test_a_comparison_runs_beside_the_live_runs_and_shows_the_table_and_charts():
    at = open_page()
    job = start(at, ["ce", "dice"], ["none"])
    assert len(job.tasks) == 2

    # The live runs go on: Step trains them in the slot the comparison shares, and leaves it to it.
    steps = int(at.slider(key="steps_per_tick").value)
    at.button(key="step").click().run()
    assert_no_exception(at)
    assert all(run.state.step == steps for run in at.session_state["runs"].values())
    assert not any("The server is busy" in text for text in texts(at.info))
    if job.running:
        assert job.place == 0 and capacity.slots().holders() == 1, "Step gave back only its own claim on the slot"

    ended(at, job)
    assert job.error is None and [o.failed for o in job.outcomes] == [None, None]
    report = next(text for text in texts(at.markdown) if "| loss | finished |" in text)
    assert "| ce | 1/1 |" in report and "| dice (none) | 1/1 |" in report
    assert "Measured with `python -m explorer.compare --losses=ce,dice --weights=none" in report
    ids = chart_ids(at)
    assert any("compare_iou_group" in i for i in ids) and any("compare_curves_group" in i for i in ids), ids
    assert any("(the rarest class)" in str(h.proto.body) for h in at.get("html"))
    assert any(b.proto.label.startswith("Download the report") for b in at.get("download_button"))
    assert not at.exception and not at.error
    assert capacity.slots().holders() == 0, "the slot went back when the comparison ended"

    at.run()  # the results stay on the page across reruns
    assert any("| dice (none) | 1/1 |" in text for text in texts(at.markdown))


def test_cancel_stops_the_comparison_and_the_page_says_so(runs_until_stopped):
    at = open_page()
    job = start(at, ["ce", "dice"], ["none"])
    assert runs_until_stopped.wait(JOB_SECONDS)
    at.run()
    assert job.running and capacity.slots().holders() == 1

    # Another section open: the section is not drawn, but the page still reads the running job
    # (else it would cancel itself as abandoned), and its settings and Cancel are there on return.
    read = []
    job.seen = lambda: (read.append(True), ComparisonJob.seen(job))
    open_section(at, sections.LIVE)
    assert read, "no part of the page read the running comparison while another section was open"
    assert not walk.elements(section(at, sections.WHICH_LOSS)), "the closed section drew elements"
    assert job.running and not job.cancelling
    del job.seen  # the class's own again
    open_section(at, sections.WHICH_LOSS)
    assert at.multiselect(key=compare_view.LOSSES).value == ["ce", "dice"]
    assert at.number_input(key=compare_view.STEPS).value == 20
    at.button(key="compare_cancel").click().run()
    assert_no_exception(at)
    ended(at, job)
    assert any(text.startswith("Cancelled: 0 of 2 runs finished") for text in texts(at.warning)), texts(at.warning)
    assert not [b for b in at.button if b.key == "compare_cancel"]
    assert not at.button(key="compare_start").disabled
    assert capacity.slots().holders() == 0


def test_at_the_cap_the_comparison_waits_for_a_slot_and_starts_when_one_frees(monkeypatch, runs_until_stopped):
    capacity.slots.clear()  # the server's slots, made again with a cap of 1
    monkeypatch.setenv(capacity.CAP_VARIABLE, "1")
    slots = capacity.slots()
    slots.stale_seconds = 1e9  # the other session must not go stale while this one waits
    assert slots.acquire("other session") == 0
    try:
        at = open_page()
        job = start(at, ["ce"], ["none"])
        wait_until(lambda: job.place == 1, "the comparison to queue")
        at.run()
        assert_no_exception(at)
        assert any(text.startswith("Waiting for a training slot") and "place 1 in the queue" in text for text in texts(at.info)), texts(at.info)
        assert job.running and not runs_until_stopped.is_set(), "nothing trains while it waits"

        slots.release("other session")
        assert runs_until_stopped.wait(JOB_SECONDS), "the comparison did not start when the slot freed"
        at.run()
        assert_no_exception(at)
        assert not any("Waiting for a training slot" in text for text in texts(at.info))
        assert job.place == 0 and slots.holders() == 1
        at.button(key="compare_cancel").click().run()
        ended(at, job)
        assert slots.holders() == 0, "the slot went back when the comparison ended"
    finally:
        slots.release("other session")
        capacity.slots.clear()


def test_an_empty_selection_is_refused_beside_it_and_nothing_starts():
    at = open_page()
    at.multiselect(key=compare_view.LOSSES).set_value([]).run()
    assert_no_exception(at)
    assert "Choose at least one loss to compare." in texts(at.error)
    assert at.button(key="compare_start").disabled
    assert compare_view.JOB not in at.session_state

    at.multiselect(key=compare_view.LOSSES).set_value(["dice"])
    at.multiselect(key=compare_view.SCHEMES).set_value([]).run()
    assert any(text.startswith("Choose at least one weighting scheme") for text in texts(at.error))
    assert at.button(key="compare_start").disabled
    assert compare_view.JOB not in at.session_state


def test_an_error_in_the_background_stays_on_the_page_until_the_data_changes(monkeypatch):
    """What the thread raises is shown with what to do; the outcome of a comparison belongs to its
    dataset, so uploaded pairs the runs train on drop it."""
    from test_upload_app import pairs_zip

    def out_of_processes(*args, **kwargs):
        raise OSError("[Errno 11] Resource temporarily unavailable")

    monkeypatch.setattr(compare, "run_all", out_of_processes)
    at = open_page()
    ended(at, start(at, ["ce"], ["none"]))
    stopped = "The comparison stopped: OSError: [Errno 11] Resource temporarily unavailable."
    assert any(text.startswith(stopped) and "Press Start to try again" in text for text in texts(at.error)), texts(at.error)
    assert not at.button(key="compare_start").disabled
    assert capacity.slots().holders() == 0
    at.run()
    assert any(text.startswith(stopped) for text in texts(at.error)), "it stays across reruns"

    at.file_uploader(key="upload_masks").set_value([("pairs.zip", pairs_zip(8)[0], "application/zip")]).run()
    at.toggle(key="upload_train").set_value(True).run()
    assert_no_exception(at)
    assert at.session_state["runs"]["A"].data.name.startswith("your data"), "the page trains on the uploaded pairs"
    assert compare_view.JOB not in at.session_state
    assert not any(text.startswith(stopped) for text in texts(at.error))


def test_a_comparison_no_page_reads_cancels_itself_and_frees_the_slot(runs_until_stopped):
    """A closed tab's comparison does not hold the slot to its end: unread for ABANDONED_SECONDS
    (a fake clock), it stops as Cancel stops it."""
    from explorer import data
    from explorer.ui import compare_job

    now = [0.0]
    plan = compare.Plan(("ce",), ("none",), steps=20, seeds=1)
    slots = capacity.slots()
    job = ComparisonJob(plan, compare.TrainingData.of(data.load_toy()), plan.command(), None, slots, "closed tab", clock=lambda: now[0]).start()
    try:
        assert runs_until_stopped.wait(JOB_SECONDS) and slots.holders() == 1
        now[0] += compare_job.ABANDONED_SECONDS - 1
        job.seen()  # a page read it: it goes on
        now[0] += compare_job.ABANDONED_SECONDS - 1
        assert not job.wait(1.0), "read ABANDONED_SECONDS - 1 ago: it keeps running"
        now[0] += 2
        assert job.wait(JOB_SECONDS), "unread for longer than ABANDONED_SECONDS: it stops"
        assert job.cancelling and [o.failed for o in job.outcomes] == [compare.CANCELLED]
        assert slots.holders() == 0
    finally:
        job.cancel()
        job.wait(JOB_SECONDS)
