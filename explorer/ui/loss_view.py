"""Each run's loss as the library defines it (docs/losses.md): formula, parameters in use, source
and the conventions other libraries use for the same name."""

from __future__ import annotations

import streamlit as st

from explorer import losses
from explorer.training import Run


def show(runs: dict[str, Run]) -> None:
    for column, (label, run) in zip(st.columns(len(runs)), runs.items()):
        spec = losses.REGISTRY[run.loss.loss_id]
        with column:
            st.markdown(f"**Run {label}: {spec.name}** · `{spec.id}` · {spec.kind}-wise")
            st.latex(spec.formula)
            shown = {k: v for k, v in run.loss.params.items() if k != "from_logits" and not (k == "ignore_index" and v is None)}
            values = ", ".join(f"{k} = {_fmt(v)}" for k, v in shown.items())
            st.caption(f"In use: {values or 'no parameters'}")
            st.caption(f"Source: {spec.source}")
            st.caption(spec.notes)
    st.caption("Every definition, convention and reference value: docs/losses.md in the repository.")


def _fmt(value) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(f"{v:.3g}" for v in value) + "]"
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)
