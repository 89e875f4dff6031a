"""Page-level tests of app.py with streamlit.testing.v1.AppTest: the page as a user drives it
(sidebar widgets and the Train / Step / Reset buttons), checked against what the page shows and
against the runs it keeps in st.session_state["runs"].

Every AppTest is a fresh browser session, so its runs are new and trace their train step again:
the tests keep the number of steps small (a few clicks of `step`)."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from page_session import assert_every_section_whole, assert_no_exception, open_expander, open_section, section, section_tabs
from page_session import open_page as fresh_app
from streamlit.testing.v1 import AppTest

from explorer import losses
from explorer.bench import walk
from explorer.ui import compare_view, sections, session, sidebar

ROOT = Path(__file__).resolve().parent.parent
TOY_CLASSES = ROOT / "assets" / "toy" / "classes.json"


# -- helpers --------------------------------------------------------------------------------------


def runs(at: AppTest) -> dict:
    return at.session_state["runs"]


def steps_per_tick(at: AppTest) -> int:
    return int(at.slider(key="steps_per_tick").value)


def click_step(at: AppTest) -> AppTest:
    at.button(key="step").click().run()
    assert_no_exception(at)
    return at


def weights_of(run) -> list[np.ndarray]:
    return [np.array(w, copy=True) for w in run.model.get_weights()]


def same_weights(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return len(a) == len(b) and all(x.shape == y.shape and np.array_equal(x, y) for x, y in zip(a, b))


def progress_text(at: AppTest) -> str:
    bars = at.get("progress")
    assert bars, "no progress bar on the page"
    return bars[0].proto.text


def progress_step(at: AppTest) -> int:
    match = re.match(r"Step (\d+) of (\d+)", progress_text(at))
    assert match, f"unexpected progress text {progress_text(at)!r}"
    return int(match.group(1))


def run_headings(at: AppTest) -> list[str]:
    """The live view's heading of each run's column ("Run A: ce" of "**Run A: ce** · step 5 · …")."""
    found = [re.match(r"\*\*(Run [A-Z]: [^*]+)\*\*", m.value) for m in section(at, sections.LIVE).markdown]
    return [m.group(1) for m in found if m]


def open_details(at: AppTest) -> AppTest:
    """Opens every run's "Probabilities, metrics and confusion" (drawn only when open)."""
    for label in runs(at):
        open_expander(at, f"live_more_{label}")
    return at


def figure(at: AppTest, key: str) -> dict:
    for chart in at.get("plotly_chart"):
        if chart.key == key or key in (getattr(chart.proto, "id", "") or ""):
            return json.loads(chart.proto.spec)
    raise AssertionError(f"no plotly chart with key {key!r}")


def error_texts(at: AppTest) -> list[str]:
    return [e.value for e in at.error]


def chart_keys(at: AppTest) -> set[str]:
    return {c.key for c in at.get("plotly_chart") if c.key}


def assert_trained(run, expected_step: int) -> None:
    state = run.state
    assert state.step == expected_step
    assert state.halted is None, state.halted
    assert state.loss_steps == tuple(range(1, expected_step + 1))
    assert len(state.loss_values) == expected_step
    assert all(math.isfinite(v) for v in state.loss_values), state.loss_values
    latest = state.latest
    assert latest is not None and latest.step == expected_step
    assert latest.probabilities is not None and np.isfinite(latest.probabilities).all()
    np.testing.assert_allclose(latest.probabilities.sum(-1), 1.0, atol=1e-4)
    assert all(np.isfinite(w).all() for w in run.model.get_weights())


# -- tests ----------------------------------------------------------------------------------------


def test_page_loads_with_dataset_device_and_untrained_runs():
    at = fresh_app()

    assert [t.value for t in at.title] == ["Segmentation Loss Explorer"]
    assert list(section_tabs(at)) == list(sections.NAMES)

    # The device line, at the foot of the live view (the section the page opens on).
    device = [c.value for c in section(at, sections.LIVE).caption if c.value.startswith("Training on ")]
    assert len(device) == 1 and re.match(r"Training on (CPU|GPU) \(", device[0]), device

    # Controls: Train (not Pause), Step, Reset; the two default runs with their losses.
    assert at.button(key="train").label.endswith("Train")
    assert not [b for b in at.button if b.key == "pause"]
    assert not at.button(key="step").disabled
    assert at.radio(key="num_runs").value == 2
    assert at.selectbox(key="A_loss").value == "ce"
    assert at.selectbox(key="B_loss").value == "focal_tversky"

    # Two untrained runs that already show maps of their initial predictions.
    assert list(runs(at)) == ["A", "B"]
    for run in runs(at).values():
        assert run.state.step == 0 and run.state.halted is None and run.state.loss_values == ()
        assert run.state.latest is not None and run.state.latest.probabilities is not None
    assert progress_step(at) == 0
    assert run_headings(at) == ["Run A: ce", "Run B: focal_tversky"]
    assert {"live_plane_A", "live_plane_B"} <= {c.key for c in at.get("plotly_chart")}
    assert not [i for i in at.info if "No validation snapshot" in i.value]
    open_details(at)
    assert figure(at, "probs_A")["data"] and figure(at, "probs_B")["data"]
    assert figure(at, "confusion_A")["data"] and figure(at, "confusion_B")["data"]
    assert not at.error

    # The dataset section: the class table, one row per class of the bundled dataset, in its
    # order, with its shares.
    open_section(at, sections.DATASET)
    expected = [c["name"] for c in json.loads(TOY_CLASSES.read_text())["classes"]]
    assert len(expected) == 4
    tables = [d.value for d in at.dataframe if "class" in d.value.columns]
    assert len(tables) == 1, [list(d.value.columns) for d in at.dataframe]
    table = tables[0]
    assert list(table["class"]) == expected
    shares = table["% of pixels"].to_numpy(dtype=float)
    assert shares.sum() == pytest.approx(100, abs=0.05)
    assert (shares > 0).all() and shares.max() / shares.min() > 10, "the toy dataset should be visibly imbalanced"
    # ... and the weights of every scheme, one column per class.
    weight_tables = [d.value for d in at.dataframe if list(d.value.columns) == expected]
    assert len(weight_tables) == 1 and len(weight_tables[0]) >= 2
    assert np.isfinite(weight_tables[0].to_numpy(dtype=float)).all()

    # No section shows an error.
    assert_every_section_whole(at)


# The page run with TensorFlow and Keras made unimportable: whatever the page draws before the
# import fails, it draws before TensorFlow loads.
_WITHOUT_TENSORFLOW = """
import json, sys
sys.modules["tensorflow"] = None  # an import of it raises ImportError
sys.modules["keras"] = None
from streamlit.testing.v1 import AppTest
at = AppTest.from_file("app.py", default_timeout=60).run()
print(json.dumps({
    "sidebar": [w.label for w in at.sidebar.selectbox] + [w.label for w in at.sidebar.slider],
    "markdown": [m.value for m in at.markdown],
    "exceptions": [e.message for e in at.exception],
    "loaded": sorted(m for m in ("tensorflow", "keras") if sys.modules.get(m) is not None),
}))
"""


def test_the_sidebar_and_the_class_strip_are_drawn_before_tensorflow_is_imported():
    """A fresh server's first visitor sees the controls while TensorFlow loads (seconds): the top of
    the page imports no TensorFlow. Checked by running the page where TensorFlow cannot be imported."""
    done = subprocess.run([sys.executable, "-c", _WITHOUT_TENSORFLOW], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    page = json.loads(done.stdout.strip().splitlines()[-1])
    assert page["loaded"] == []
    assert any("tensorflow" in message.lower() for message in page["exceptions"]), page["exceptions"]  # it did stop there
    assert page["sidebar"].count("Loss") == sidebar.DEFAULT_NUM_RUNS
    assert "Normalization in the U-Net" in page["sidebar"] and "Steps per round" in page["sidebar"]
    assert any("% of training pixels" in text for text in page["markdown"]), page["markdown"]


def test_step_trains_every_run():
    at = fresh_app()
    n = steps_per_tick(at)
    before = {label: weights_of(run) for label, run in runs(at).items()}

    click_step(at)
    for label, run in runs(at).items():
        assert_trained(run, n)
        assert not same_weights(weights_of(run), before[label]), f"run {label}: weights did not change"
    assert progress_step(at) == n
    assert at.button(key="step").label == f"Step +{n}"

    click_step(at)
    for run in runs(at).values():
        assert_trained(run, 2 * n)
    assert progress_step(at) == 2 * n
    # The curves show every run's loss so far.
    curves = figure(at, "curves")
    loss_traces = {t["name"]: t for t in curves["data"]}  # the loss figure holds only the runs' losses
    assert set(loss_traces) == {"A", "B"}
    assert all(len(t["x"]) == 2 * n for t in loss_traces.values())
    assert_every_section_whole(at)


def test_reset_returns_to_step_zero_and_the_initial_weights():
    at = fresh_app()
    initial = {label: weights_of(run) for label, run in runs(at).items()}
    click_step(at)
    first_losses = {label: run.state.loss_values for label, run in runs(at).items()}
    assert all(not same_weights(weights_of(run), initial[label]) for label, run in runs(at).items())

    at.button(key="reset").click().run()
    assert_no_exception(at)
    for label, run in runs(at).items():
        assert run.state.step == 0 and run.state.loss_values == () and run.state.events == ()
        assert same_weights(weights_of(run), initial[label]), f"run {label}: reset did not restore the initial weights"
        assert int(run.optimizer.iterations.numpy()) == 0
    assert progress_step(at) == 0

    # A fresh optimizer on the same weights and batches: the same steps give the same losses.
    click_step(at)
    for label, run in runs(at).items():
        np.testing.assert_allclose(run.state.loss_values, first_losses[label], rtol=1e-4, err_msg=f"run {label}")


def test_reset_keeps_the_learning_rate_chosen_in_the_sidebar():
    at = fresh_app()
    at.select_slider(key="lr").set_value(1e-2).run()
    assert_no_exception(at)
    click_step(at)
    at.button(key="reset").click().run()
    assert_no_exception(at)
    for label, run in runs(at).items():
        assert run.config.learning_rate == pytest.approx(1e-2)
        assert float(run.optimizer.learning_rate.numpy()) == pytest.approx(1e-2), (
            f"run {label}: after Reset the optimizer trains with lr {float(run.optimizer.learning_rate.numpy()):g} "
            "while the sidebar (and run.config) say 0.01"
        )


def test_changing_run_b_loss_carries_on_and_marks_the_curve():
    at = fresh_app()
    n = steps_per_tick(at)
    click_step(at)
    run_a, run_b = runs(at)["A"], runs(at)["B"]
    new_loss = "dice"
    assert new_loss in losses.REGISTRY

    at.selectbox(key="B_loss").set_value(new_loss).run()
    assert_no_exception(at)
    assert runs(at)["B"] is run_b, "changing the loss must carry on with the same run, not start a new one"
    assert run_b.loss.loss_id == new_loss and run_b.config.loss_id == new_loss
    assert run_b.state.step == n and len(run_b.state.loss_values) == n
    assert len(run_b.state.events) == 1
    event_step, event_text = run_b.state.events[0]
    assert event_step == n and new_loss in event_text and "focal_tversky" in event_text
    assert runs(at)["A"] is run_a and run_a.state.events == ()
    assert f"Run B: {new_loss}" in run_headings(at)

    # The change is drawn on the curves: a dotted line and a label at the step of the change.
    curves = figure(at, "curves")
    annotations = [a for a in curves["layout"].get("annotations", []) if a.get("text", "").startswith("B:")]
    assert len(annotations) == 1 and new_loss in annotations[0]["text"] and annotations[0]["x"] == n
    for key, plots_marked in (("curves", 1), ("curves_validation", 2)):  # the loss plot; the IoU and |logit| plots
        vlines = [s for s in figure(at, key)["layout"].get("shapes", []) if s.get("type") == "line" and s.get("x0") == n]
        assert len(vlines) == plots_marked, key

    click_step(at)
    assert_trained(run_b, 2 * n)
    assert_trained(run_a, 2 * n)
    assert run_b.state.events == ((n, event_text),)
    assert_every_section_whole(at)


def test_one_run_then_three_runs():
    at = fresh_app()
    n = steps_per_tick(at)

    at.radio(key="num_runs").set_value(1).run()
    assert_no_exception(at)
    assert list(runs(at)) == ["A"]
    assert not [s for s in at.sidebar.selectbox if s.key in ("B_loss", "C_loss")]
    assert run_headings(at) == ["Run A: ce"]
    click_step(at)
    assert_trained(runs(at)["A"], n)
    run_a = runs(at)["A"]

    at.radio(key="num_runs").set_value(3).run()
    assert_no_exception(at)
    assert list(runs(at)) == ["A", "B", "C"]
    assert runs(at)["A"] is run_a and run_a.state.step == n
    assert at.selectbox(key="C_loss").value == "weighted_ce"
    # weighted_ce shows its class weights, one box per class, filled by the chosen scheme.
    scheme = at.selectbox(key="C_scheme").value
    keys = {sidebar.weight_key("C", scheme, c, session.toy_counts()) for c in range(4)}
    weight_boxes = [b for b in at.sidebar.number_input if b.key in keys]
    assert len(weight_boxes) == 4 and all(b.value > 0 for b in weight_boxes)
    assert run_headings(at) == ["Run A: ce", "Run B: focal_tversky", "Run C: weighted_ce"]
    # New runs start from run A's initial weights (same seed).
    for label in ("B", "C"):
        assert runs(at)[label].state.step == 0
        assert same_weights(runs(at)[label].initial_weights, run_a.initial_weights)
    assert progress_step(at) == 0, "the progress line is of the slowest run, and B and C are new"

    click_step(at)  # the new runs catch up with A, which waits: side-by-side runs stay in step
    assert_trained(runs(at)["A"], n)
    assert_trained(runs(at)["B"], n)
    assert_trained(runs(at)["C"], n)
    assert progress_step(at) == n
    click_step(at)
    assert [r.state.step for r in runs(at).values()] == [2 * n] * 3
    open_details(at)
    assert all(figure(at, f"probs_{label}")["data"] for label in "ABC")
    assert_every_section_whole(at)


def test_same_seed_same_initial_weights_across_runs_and_sessions():
    first = fresh_app()
    a, b = runs(first)["A"], runs(first)["B"]
    assert same_weights(a.initial_weights, b.initial_weights)
    assert same_weights(weights_of(a), weights_of(b))

    # Another browser session with the same seed: the very same weights (seeded initializers).
    second = fresh_app()
    assert same_weights(runs(second)["A"].initial_weights, a.initial_weights)

    # Another seed: other weights, still shared by both runs of that session.
    second.number_input(key="seed").set_value(1).run()
    assert_no_exception(second)
    a1, b1 = runs(second)["A"], runs(second)["B"]
    assert a1.config.seed == 1 and b1.config.seed == 1
    assert not same_weights(a1.initial_weights, a.initial_weights)
    assert same_weights(a1.initial_weights, b1.initial_weights)
    assert same_weights(weights_of(a1), a1.initial_weights)


def test_nan_guard_halts_with_a_message_and_keeps_finite_weights():
    at = fresh_app()
    # The normalized U-Net survives learning rate 10; the one without normalization does not.
    at.selectbox(key="normalization").set_value("none").run()
    assert_no_exception(at)
    at.select_slider(key="lr").set_value(10.0).run()
    assert_no_exception(at)
    at.slider(key="steps_per_tick").set_value(20).run()
    assert_no_exception(at)
    for run in runs(at).values():
        assert float(run.optimizer.learning_rate.numpy()) == pytest.approx(10.0)

    for _ in range(10):
        click_step(at)
        if any(run.state.halted for run in runs(at).values()):
            break
    halted = {label: run for label, run in runs(at).items() if run.state.halted}
    assert halted, f"no run halted at learning rate 10 after {max(r.state.step for r in runs(at).values())} steps"

    messages = error_texts(at)
    for label, run in halted.items():
        assert "non-finite" in run.state.halted
        assert any(m.startswith(f"Run {label}:") and "non-finite" in m for m in messages), messages
        # The bad update was not applied: the weights are the last good ones, and finite.
        assert all(np.isfinite(w).all() for w in run.model.get_weights())
        assert all(math.isfinite(v) for v in run.state.loss_values)
        assert len(run.state.loss_values) == run.state.step

    assert_every_section_whole(at, errors=False)  # every section draws the halted runs

    # A halted run stays where it is until the user resumes or resets.
    where = {label: (run.state.step, weights_of(run)) for label, run in halted.items()}
    click_step(at)
    for label, run in halted.items():
        assert run.state.step == where[label][0] and run.state.halted
        assert same_weights(weights_of(run), where[label][1])

    # Reset clears the halt and the message.
    at.button(key="reset").click().run()
    assert_no_exception(at)
    assert all(run.state.halted is None and run.state.step == 0 for run in runs(at).values())
    assert not [m for m in error_texts(at) if "non-finite" in m]


def test_train_trains_beside_the_page_until_the_last_step_and_the_train_button_comes_back():
    """AppTest runs no timers, so the live fragment does not redraw here: the test waits for the
    session's worker, then reruns the page as the fragment's next tick would."""
    at = fresh_app()
    at.number_input(key="max_steps").set_value(10).run()
    assert_no_exception(at)
    at.button(key="train").click().run()
    assert_no_exception(at)
    assert [b.key for b in at.button if b.key in ("train", "pause")] == ["pause"]
    assert at.button(key="step").disabled, "Step while training"
    assert at.session_state["live_worker"].wait_idle(600), "the worker did not stop at the last step"
    at.run()
    assert_no_exception(at)
    assert [b.key for b in at.button if b.key in ("train", "pause")] == ["train"]
    for label, run in runs(at).items():
        assert_trained(run, 10)
        assert run.state.latest.step == 10, f"run {label}: no snapshot of the last step"
    assert progress_step(at) == 10


def test_training_that_ends_while_the_page_draws_brings_the_train_button_back(monkeypatch):
    """The race CI met: a rerun draws Pause, then waits in sync_runs for the worker's round in
    progress, which is its last. The progress fragment then sees nothing to tick for; unless the
    page is drawn again, Pause stays on a page that never changes again."""
    at = fresh_app()
    at.number_input(key="max_steps").set_value(10).run()
    real_sync = session.sync_runs

    def sync_while_the_last_round_ends(configs, dataset):
        synced = real_sync(configs, dataset)
        worker = session.worker()
        if worker.training:
            assert worker.wait_idle(600), "the worker did not stop at the last step"
        return synced

    monkeypatch.setattr(session, "sync_runs", sync_while_the_last_round_ends)
    at.button(key="train").click().run()
    assert_no_exception(at)
    assert not at.session_state["live_worker"].training
    assert [b.key for b in at.button if b.key in ("train", "pause")] == ["train"], "Pause stays after training ended"
    assert progress_step(at) == 10


def test_the_page_traces_the_train_steps_before_train_is_pressed(monkeypatch):
    monkeypatch.setenv("EXPLORER_TRACE_AHEAD", "1")
    at = fresh_app()
    worker = at.session_state["live_worker"]
    assert worker.wait_idle(600)
    for label, run in runs(at).items():
        assert run._train_step.experimental_get_tracing_count() == 1, f"run {label}'s step was not traced ahead"
        assert run.state.step == 0 and run.state.loss_values == ()
    click_step(at)
    for label, run in runs(at).items():
        assert_trained(run, steps_per_tick(at))
        assert run._train_step.experimental_get_tracing_count() == 1, f"run {label}: Step traced its step again"


# -- the sections ---------------------------------------------------------------------------------


def test_each_section_runs_alone_under_the_controls_and_draws_to_its_end():
    """Only the open section runs ("Your data" too: its uploaders keep their files only while drawn),
    so a closed section's tab is empty; the controls and the progress are above them all."""
    at = fresh_app()
    for name in (*sections.NAMES[1:], sections.LIVE):
        open_section(at, name)
        assert not walk.section_problems(at), walk.section_problems(at)
        assert [b.key for b in at.button if b.key in ("train", "pause", "step", "reset")] == ["train", "step", "reset"], name
        assert progress_step(at) == 0, name
        assert not at.error, (name, error_texts(at))


def test_switching_sections_keeps_what_the_user_chose():
    """A section's widgets are not drawn while another is open: their values must outlive that.
    The live view's image is read by the surfaces' per-pixel maps, and the class chosen in the
    surfaces by the live view's planes."""
    at = fresh_app()
    names = runs(at)["A"].data.class_names
    title = lambda: json.dumps(figure(at, "live_plane_A")["layout"]["title"])  # noqa: E731
    rarest = names[int(np.argmin(session.toy_counts().frequencies))]
    assert f"loss of {rarest}" in title()
    at.slider(key="val_image").set_value(3).run()
    assert_no_exception(at)

    open_section(at, sections.SURFACES)
    assert {key[-1] for key, _ in at.session_state["surfaces_maps_cache"].values()} == {3}, "the maps are of the live view's image"
    chosen = next(c for c in range(len(names)) if names[c] != rarest)
    at.selectbox(key="surfaces_class").set_value(chosen).run()
    at.toggle(key="surfaces_log").set_value(False).run()
    at.checkbox(key="surfaces_maps_shared").set_value(False).run()
    at.select_slider(key="landscape_steps").set_value(11).run()
    assert_no_exception(at)
    open_section(at, sections.TRAPS)
    at.number_input(key="trap_batch_seed").set_value(7).run()
    at.selectbox(key="trap_batch_size").set_value(4).run()
    assert_no_exception(at)
    open_section(at, sections.WHICH_LOSS)
    at.multiselect(key=compare_view.LOSSES).set_value(["dice"]).run()
    at.number_input(key=compare_view.SEEDS).set_value(3).run()
    assert_no_exception(at)

    open_section(at, sections.LIVE)
    assert at.slider(key="val_image").value == 3
    assert f"loss of {names[chosen]}" in title(), "the live view's planes follow the class chosen in the surfaces"
    open_section(at, sections.SURFACES)
    assert at.selectbox(key="surfaces_class").value == chosen
    assert at.toggle(key="surfaces_log").value is False
    assert at.checkbox(key="surfaces_maps_shared").value is False
    assert at.select_slider(key="landscape_steps").value == 11
    open_section(at, sections.TRAPS)
    assert at.number_input(key="trap_batch_seed").value == 7
    assert at.selectbox(key="trap_batch_size").value == 4
    open_section(at, sections.WHICH_LOSS)
    assert at.multiselect(key=compare_view.LOSSES).value == ["dice"]
    assert at.number_input(key=compare_view.SEEDS).value == 3


def test_a_runs_details_stay_open_across_sections():
    """"Probabilities, metrics and confusion" opened under a run, another section looked at, and
    back to the live view: still open, as the user left it."""
    at = fresh_app()
    open_expander(at, "live_more_A")
    assert {"probs_A", "confusion_A"} <= chart_keys(at) and "probs_B" not in chart_keys(at)
    open_section(at, sections.TRAPS)
    open_section(at, sections.LIVE)
    assert at.session_state["live_more_A"] is True, "run A's details closed while another section was open"
    assert {"probs_A", "confusion_A"} <= chart_keys(at)
