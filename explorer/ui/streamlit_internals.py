"""The only use of private Streamlit API, because no public option does the job.
tests/test_streamlit_internals.py fails, naming it, if an upgrade removes or changes it.

- `streamlit.runtime.scriptrunner.script_runner._clean_problem_modules`: after every script run,
  full or fragment, Streamlit calls `keras.backend.clear_session()`. That drops TensorFlow's
  cached kernels (every run's next call makes them again), collects garbage, and resets Keras's
  global state for every thread, while the sessions' training workers (explorer/live.py) train
  and trace in theirs. Measured with the page redrawing twice a second: training on the page ran
  at 0.10–0.15 of the same runs' rate in a plain process, and the profile of the server showed
  the worker waiting on kernels the redraws had just cleared. The page's runs live for the whole
  session, so there is nothing to clear: the dropped runs' kernels are cleared by
  explorer/training.py when a new run is built.
"""

from __future__ import annotations

import sys

from streamlit.runtime.scriptrunner import script_runner


STREAMLIT_CLEAN_UP = script_runner._clean_problem_modules  # Streamlit's own, as imported


def _clean_problem_modules_but_keras() -> None:
    """Streamlit's own clean-up of matplotlib's figures, without its clearing of Keras."""
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None:
        pyplot.close("all")


def keep_keras_state() -> None:
    """Stop Streamlit from clearing Keras's session after each script run (idempotent)."""
    script_runner._clean_problem_modules = _clean_problem_modules_but_keras
