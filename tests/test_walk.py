"""Nothing a user does breaks the page: short seeded random walks over every control
(explorer/bench/walk.py; `python -m explorer.bench.walk --actions 5000 --seed N` runs long ones),
and the faults the walks found, each driven directly."""

from __future__ import annotations

import pytest
from page_session import assert_no_exception
from page_session import open_page as fresh_app

from explorer.bench import walk
from explorer.ui import sections, sidebar

# 240 actions over 6 seeds. Most actions rerun the page in about a second; Step, a new seed or
# loss (a model built and traced) take 5–30 s. Left to the long walks of
# `python -m explorer.bench.walk --actions N --seed S`: the landscape's Compute and the comparison's
# Start (minutes in AppTest), and the traps' trainings (20–30 s each, pressed once each below).
SEEDS = (0, 1, 2, 3, 4, 5)
ACTIONS_PER_SEED = 40


@pytest.mark.parametrize("seed", SEEDS)
def test_random_walk_leaves_the_page_whole(seed):
    result = walk.walk(seed, ACTIONS_PER_SEED, skip=walk.SLOW_IN_APPTEST | walk.TRAP_RUNS)
    assert not result.problems, result.report()
    assert len(result.actions) == ACTIONS_PER_SEED
    # Only the open section's widgets are on the page: the walk opened every section.
    assert all(walk.opened(result.actions).values()), walk.opened(result.actions)


def test_every_traps_training_runs_from_the_page_and_shows_its_result():
    """The four buttons the walks above leave out, pressed once each on one page."""
    at = fresh_app(section=sections.TRAPS)
    waiting = ("Trains a small U-Net twice", "Calls the installed Keras's model.fit")
    assert sum(c.value.startswith(waiting) for c in at.main.caption) == 4
    tables = len(at.main.dataframe)
    for key in sorted(walk.TRAP_RUNS):
        perform_and_check(at, walk.Action("button", key, "click"))
    assert not [c.value for c in at.main.caption if c.value.startswith(waiting)]
    captions = [c.value for c in at.main.caption]
    assert any(c.startswith("Shown: ") and "80 steps" in c for c in captions), captions  # per-batch weights
    assert any(c.startswith("Keras ") and "class_weight = " in c for c in captions), captions  # model.fit
    assert any("raised in" in c.value for c in at.code)  # model.fit with class_weight on masks raises
    assert len(at.main.dataframe) >= tables + 2  # the outcomes of the wrong axis and of the sigmoid


def perform_and_check(at, action) -> None:
    walk.perform(at, action)
    assert_whole(at)


def assert_whole(at) -> None:
    assert_no_exception(at)
    assert not walk.problems(at), walk.problems(at)


def test_a_failure_reports_the_seed_and_the_actions_that_replay_it():
    actions = [
        walk.Action("slider", "steps_per_tick", 3), walk.Action("text_input", "x", "<b>"),
        walk.Action(walk.TAB, sections.KEY, sections.TRAPS), walk.Action(walk.EXPANDER, "live_more_A", True),
    ]
    report = walk.Walk(7, actions, ["exception: boom"], 1.0).report()
    assert report.startswith("seed 7: 4 actions, FAILED")
    assert walk.actions_json(actions) in report and "exception: boom" in report
    assert [walk.Action(**a) for a in __import__("json").loads(walk.actions_json(actions))] == actions


def test_a_formatted_option_is_set_by_the_value_its_label_shows():
    """A long walk (seed 11) chose the label 'group normalization' of a select box whose format_func
    is NORMALIZATIONS.get and could not turn it back into "group" (a ValueError in the walk)."""
    from explorer.run_config import NORMALIZATIONS

    class Select:
        format_func = NORMALIZATIONS.get

    assert [walk._option_value(Select(), label) for label in NORMALIZATIONS.values()] == list(NORMALIZATIONS)

    class Numbers:
        format_func = staticmethod(lambda v: f"{v:g}")

    assert walk._option_value(Numbers(), "0.003") == 0.003

    class Percent:  # the upload's rare-crop share (seed 2, action 35, of a 50-action walk)
        format_func = staticmethod(lambda share: f"{share:.0%}")

    assert [walk._option_value(Percent(), label) for label in ("0%", "10%", "25%", "50%")] == [0.0, 0.1, 0.25, 0.5]


# -- what the walks found ---------------------------------------------------------------------------


def weight_boxes(at, label: str) -> list:
    return [w for w in at.number_input if w.key.startswith(f"{label}_") and "_w" in w.key]


def set_and_run(widget, value, at):
    widget.set_value(value)
    at.run()
    assert_whole(at)


def test_all_class_weights_zero_is_refused_beside_the_boxes_and_the_run_keeps_its_last_valid_weights():
    """Before: losses.py raised a ValueError through session.sync_runs and training, surfaces and
    export vanished from the page."""
    at = fresh_app()
    assert at.selectbox(key=sidebar.loss_key("B")).value == "focal_tversky"  # uses class weights
    assert len(weight_boxes(at, "B")) == 4
    for c in range(3):
        set_and_run(weight_boxes(at, "B")[c], 0.0, at)  # the elements of the latest run, each time
    last_valid = at.session_state["runs"]["B"].config.class_weights
    assert last_valid[:3] == (0.0, 0.0, 0.0) and last_valid[3] > 0
    set_and_run(weight_boxes(at, "B")[-1], 0.0, at)
    errors = [e.value for e in at.sidebar.error]
    assert any("Give at least one class a weight above 0." in e and "run B trains with its last valid set-up" in e for e in errors), errors
    assert at.session_state["runs"]["B"].config.class_weights == last_valid
    at.button(key="step").click().run()  # training goes on with the last valid weights
    assert_no_exception(at)
    assert at.session_state["runs"]["B"].state.step > 0
    set_and_run(weight_boxes(at, "B")[1], 2.0, at)
    assert not at.sidebar.error
    assert at.session_state["runs"]["B"].config.class_weights == (0.0, 2.0, 0.0, 0.0)


def test_only_the_background_weighted_with_the_background_excluded_is_refused():
    at = fresh_app()
    for c in range(1, 4):
        set_and_run(weight_boxes(at, "B")[c], 0.0, at)
    valid = at.session_state["runs"]["B"].config
    assert valid.loss_params["include_background"] is True
    set_and_run(at.checkbox(key=sidebar.background_key("B", "focal_tversky")), False, at)
    errors = [e.value for e in at.sidebar.error]
    assert any("Give a class other than background a weight above 0, or tick Include background." in e for e in errors), errors
    assert at.session_state["runs"]["B"].config == valid
