"""The only uses of private Streamlit API, because no public option does the job.
tests/test_streamlit_internals.py fails, naming them, if an upgrade removes or changes them.

- `streamlit.runtime.scriptrunner.script_runner._clean_problem_modules`: after every script run,
  full or fragment, Streamlit calls `keras.backend.clear_session()`. That drops TensorFlow's
  cached kernels (every run's next call makes them again), collects garbage, and resets Keras's
  global state for every thread, while the sessions' training workers (explorer/live.py) train
  and trace in theirs. Measured with the page redrawing twice a second: training on the page ran
  at 0.10–0.15 of the same runs' rate in a plain process, and the profile of the server showed
  the worker waiting on kernels the redraws had just cleared. The page's runs live for the whole
  session, so there is nothing to clear: the dropped runs' kernels are cleared by
  explorer/training.py when a new run is built.
- `streamlit.runtime.Runtime.is_active_session`: whether a session's browser tab is still
  connected. Streamlit offers no public hook for a closed tab, and the page ticks only while it
  trains, so the training worker cannot tell a closed tab from an idle one by its reads alone. Its
  warm-up (seconds of tracing per run, holding the interpreter) asks this between runs and stops
  for a tab that has gone: a reload's new session then traces alone.
"""

from __future__ import annotations

import sys

from streamlit.runtime import Runtime
from streamlit.runtime.scriptrunner import get_script_run_ctx, script_runner


STREAMLIT_CLEAN_UP = script_runner._clean_problem_modules  # Streamlit's own, as imported


def _clean_problem_modules_but_keras() -> None:
    """Streamlit's own clean-up of matplotlib's figures, without its clearing of Keras."""
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None:
        pyplot.close("all")


def keep_keras_state() -> None:
    """Stop Streamlit from clearing Keras's session after each script run (idempotent)."""
    script_runner._clean_problem_modules = _clean_problem_modules_but_keras


def page_open_check():
    """For the session of the script run calling it: a function, safe on any thread, that is False
    once the session's browser tab has disconnected. Always True without a server (AppTest, a
    bare `python app.py`), where there is no tab to lose."""
    ctx = get_script_run_ctx()
    if ctx is None or not Runtime.exists():
        return lambda: True
    runtime, session_id = Runtime.instance(), ctx.session_id
    return lambda: runtime.is_active_session(session_id)
