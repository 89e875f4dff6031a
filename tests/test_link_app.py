"""Links with AppTest: a page opened with a link's query parameters shows that set-up (runs, losses,
parameters, class weights, training settings); a bad or tampered link shows a clear message and the
defaults, without an exception; "Make a link" puts the current set-up in the query parameters."""

from __future__ import annotations

import pytest
from page_session import open_page
from streamlit.testing.v1 import AppTest

from explorer import data, export, weights
from explorer.training import RunConfig
from explorer.ui import sections, sidebar

TOY_COUNTS = weights.count_pixels(data.load_toy().train_masks, 4)

def link_texts(at: AppTest) -> list[str]:
    return [m.value for m in list(at.info) + list(at.warning) if "link" in m.value.lower()]


SHARED = dict(learning_rate=3e-3, batch_size=8, seed=3)
CONFIGS = {
    "A": RunConfig("tversky", {"alpha": 0.45, "beta": 0.55, "smooth": 1e-4, "batch": True, "include_background": False}, (0.5, 1.0, 2.0, 3.25), **SHARED),
    "B": RunConfig("focal", {"alpha": 0.8, "gamma": 1.5}, (1.0, 2.0, 3.0, 4.0), **SHARED),
    "C": RunConfig("ce", {}, None, **SHARED),
}
SETTINGS = export.Settings(max_steps=300, steps_per_tick=7, evaluate_every=25, schemes={"A": "inverse", "B": "balanced"})


def test_a_good_link_restores_runs_losses_parameters_and_weights():
    at = open_page(export.to_query_params(CONFIGS, SETTINGS))
    runs = at.session_state["runs"]
    assert list(runs) == ["A", "B", "C"]
    for label, expected in CONFIGS.items():
        config = runs[label].config
        assert config.loss_id == expected.loss_id, label
        assert config.loss_params == pytest.approx(expected.loss_params), label
        assert (config.class_weights is None) == (expected.class_weights is None), label
        if expected.class_weights is not None:
            assert config.class_weights == pytest.approx(expected.class_weights), label
        assert (config.learning_rate, config.batch_size, config.seed) == (3e-3, 8, 3)
    # The widgets themselves show the link's values.
    assert at.radio(key="num_runs").value == 3
    assert at.selectbox(key="A_loss").value == "tversky"
    assert at.slider(key="A_tversky_alpha").value == pytest.approx(0.45)
    assert at.checkbox(key="A_tversky_batch").value is True and at.checkbox(key="A_tversky_bg").value is False
    assert at.selectbox(key="A_scheme").value == "inverse"
    assert at.number_input(key=sidebar.weight_key("A", "inverse", 3, TOY_COUNTS)).value == pytest.approx(3.25)
    assert at.number_input(key="max_steps").value == 300 and at.slider(key="steps_per_tick").value == 7
    assert at.slider(key="evaluate_every").value == 25
    assert any("Opened from a link" in text for text in link_texts(at))
    # The loss the run trains with is the restored one.
    assert runs["A"].loss.params["alpha"] == pytest.approx(0.45) and runs["A"].loss.params["batch"] is True


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ({"v": "1", "A": "tversky~alpha~7"}, "outside"),
        ({"v": "1", "lr": "0.002", "A": "ce"}, "not one the page offers"),
        ({"A": "dice", "B": "ce"}, "not made by this app"),
    ],
    ids=["param-out-of-range", "lr-not-offered", "no-version"],
)
def test_a_bad_link_shows_a_message_and_the_defaults(query, reason):
    at = open_page(query)
    messages = [w.value for w in at.warning]
    assert any("could not be opened" in m and reason in m for m in messages), messages
    assert not at.error
    assert at.radio(key="num_runs").value == 2
    assert at.selectbox(key="A_loss").value == "ce" and at.selectbox(key="B_loss").value == "focal_tversky"
    assert at.select_slider(key="lr").value == pytest.approx(1e-3)
    assert list(at.session_state["runs"]) == ["A", "B"]


def test_make_a_link_then_open_it():
    at = open_page(section=sections.EXPORT)
    at.selectbox(key="B_loss").set_value("dice").run()
    at.slider(key="B_dice_smooth").set_value(0.5).run()
    at.button(key="export_make_link").click().run()
    assert not at.exception
    query = {key: at.query_params[key] for key in at.query_params}
    query = {key: value[0] if isinstance(value, list) else value for key, value in query.items()}
    assert query["v"] == "1" and query["B"].startswith("dice~smooth~0.5")
    shown = [c.value for c in at.code if "v=1" in c.value]
    assert shown and shown[0].split("?", 1)[1].startswith("v=1&")

    again = open_page(query)
    run_b = again.session_state["runs"]["B"]
    assert run_b.config.loss_id == "dice" and run_b.config.loss_params["smooth"] == pytest.approx(0.5)
    assert run_b.config.class_weights == pytest.approx(at.session_state["runs"]["B"].config.class_weights)
