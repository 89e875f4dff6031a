"""Browser sessions are kept apart: three sessions with different set-ups, stepped in turn, each
train exactly what the same configuration trains alone."""

from __future__ import annotations

import numpy as np
from page_session import assert_no_exception, open_page

from explorer.training import Run

SESSIONS = {"one": ("ce", 0), "two": ("dice", 1), "three": ("focal", 2)}


def test_three_sessions_train_side_by_side_without_cross_talk():
    pages = {}
    for name, (loss_id, seed) in SESSIONS.items():
        at = open_page()
        at.radio(key="num_runs").set_value(1)
        at.selectbox(key="A_loss").set_value(loss_id)
        at.number_input(key="seed").set_value(seed)
        at.run()
        assert_no_exception(at)
        pages[name] = at
    for _ in range(2):  # interleaved, as concurrent users would step
        for at in pages.values():
            at.button(key="step").click().run()
            assert_no_exception(at)

    for name, at in pages.items():
        (run,) = at.session_state["runs"].values()
        loss_id, seed = SESSIONS[name]
        assert run.config.loss_id == loss_id and run.config.seed == seed
        alone = Run(run.config, run.data)  # the same configuration, trained by itself
        alone.advance(run.state.step, evaluate_every=None)
        assert run.state.step == 2 * at.slider(key="steps_per_tick").value
        np.testing.assert_allclose(run.state.loss_values, alone.state.loss_values, rtol=1e-5)
    runs = [at.session_state["runs"]["A"] for at in pages.values()]
    assert len({id(r.model) for r in runs}) == 3, "each session owns its model"

