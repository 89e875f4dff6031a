"""The Export section: each run's loss as a self-contained Keras file, the set-up as JSON (and
back), a link that reopens the set-up, and each run's trained model as a .keras file."""

from __future__ import annotations

from urllib.parse import urlencode

import streamlit as st

from explorer import export, losses, snippet, weights
from explorer.training import Run, RunConfig
from explorer.ui import link, sidebar

_LINK = "_export_link"  # the query parameters of the last link made in this session
_UPLOAD_MESSAGE = "_export_upload_message"


def _schemes(configs: dict[str, RunConfig]) -> dict[str, str]:
    out = {}
    for label, config in configs.items():
        if losses.REGISTRY[config.loss_id].uses_class_weights:
            out[label] = st.session_state.get(sidebar.scheme_key(label), sidebar.DEFAULT_SCHEME)
    return out


def _snippet_params(config: RunConfig) -> dict:
    params = dict(config.loss_params)
    if losses.REGISTRY[config.loss_id].uses_class_weights and config.class_weights is not None:
        params["class_weights"] = [float(w) for w in config.class_weights]
    return params


def show(runs: dict[str, Run], configs: dict[str, RunConfig], settings, counts: weights.ClassCounts) -> None:
    """``counts``: the class counts of the dataset the runs train on (the sidebar's weights come from them)."""
    st.header("Export")
    loss_tab, setup_tab, model_tab = st.tabs(["Keras loss", "Set-up and link", "Trained models"])
    with loss_tab:
        _losses(configs)
    with setup_tab:
        _setup(configs, settings, counts)
    with model_tab:
        _models(runs)


def _losses(configs: dict[str, RunConfig]) -> None:
    st.caption(
        "Each run's loss with its parameters and class weights, as one Python file that needs only Keras 3 "
        "(written with keras.ops). It takes one-hot or integer masks, and an ignore_index for a void label. "
        "It is generated from this app's own definitions, and a test checks that it gives the same values "
        "on the TensorFlow and JAX backends (the ones tested). Definitions: docs/losses.md in the repository."
    )
    for column, (label, config) in zip(st.columns(len(configs)), configs.items()):
        with column:
            try:
                code = snippet.keras_snippet(config.loss_id, _snippet_params(config))
            except ValueError as error:
                st.warning(f"Run {label}'s loss cannot be exported: {error}")
                continue
            st.download_button(
                f"Download {config.loss_id}_loss.py (run {label})", code, file_name=f"{config.loss_id}_loss.py",
                mime="text/x-python", key=f"export_snippet_{label}", icon=":material/download:", on_click="ignore",
            )
            with st.expander(f"Run {label}: {losses.REGISTRY[config.loss_id].name}, the code", expanded=False):
                st.code(code, language="python", line_numbers=False)


def _setup(configs: dict[str, RunConfig], settings, counts: weights.ClassCounts) -> None:
    schemes = _schemes(configs)
    text = export.config_json(configs, settings, schemes)
    left, right = st.columns(2)
    with left:
        st.markdown("**The set-up as JSON**: runs, losses, parameters, class weights and training settings.")
        st.download_button(
            "Download setup.json", text, file_name="segmentation-loss-explorer-setup.json", mime="application/json",
            key="export_config", icon=":material/download:", on_click="ignore",
        )
        st.file_uploader(
            "Open a saved set-up", type=["json"], key="export_config_upload", on_change=_open_upload,
            args=(counts,), help="A setup.json downloaded here: the sidebar takes its values.",
        )
        message = st.session_state.get(_UPLOAD_MESSAGE)
        if message:
            (st.success if message[0] == "ok" else st.warning)(message[1])
        with st.expander("The JSON"):
            st.code(text, language="json")
    with right:
        st.markdown("**A link** that reopens this exact set-up (runs, losses, parameters, weights).")
        params = export.to_query_params(configs, settings, schemes)
        st.button(
            "Make a link", key="export_make_link", icon=":material/link:", on_click=_make_link, args=(params,),
            help="Puts the set-up in the address bar: bookmark it or copy the address below.",
        )
        made = st.session_state.get(_LINK)
        if made is not None:
            base = _base_url()
            st.code(f"{base}?{urlencode(made)}", language="text", wrap_lines=True)
            if made != params:
                st.caption("The set-up changed since this link was made: make a new one to include the changes.")
            else:
                st.caption("The address bar holds this link now. Opening it starts a new session with this set-up.")


def _base_url() -> str:
    try:
        url = st.context.url
    except Exception:  # noqa: BLE001 — no browser (tests): a relative link still works
        url = None
    return (url or "").split("?")[0] or "http://localhost:8501/"


def _make_link(params: dict) -> None:
    st.query_params.from_dict(params)
    st.session_state[_LINK] = dict(params)


def _open_upload(counts: weights.ClassCounts) -> None:
    """on_change of the uploader: runs before the script, so the sidebar's widget keys may still be set."""
    upload = st.session_state.get("export_config_upload")
    if upload is None:
        st.session_state.pop(_UPLOAD_MESSAGE, None)
        return
    try:
        configs, settings = export.parse_config(upload.getvalue(), num_classes=len(counts.pixels))
        values = link.widget_values(configs, settings, counts)
    except ValueError as error:
        st.session_state[_UPLOAD_MESSAGE] = ("error", f"{upload.name} could not be opened: {error}. Nothing was changed.")
        return
    for key, value in values.items():
        st.session_state[key] = value
    st.session_state[_UPLOAD_MESSAGE] = ("ok", f"Opened {upload.name}: {len(configs)} run(s) set in the sidebar.")


def _models(runs: dict[str, Run]) -> None:
    st.caption(
        "Each run's U-Net as it is now, as a .keras file: `keras.models.load_model(path)` opens it without this "
        "app (it outputs logits; apply a softmax over the last axis). Pause training for a snapshot of one step."
    )
    for column, (label, run) in zip(st.columns(len(runs)), runs.items()):
        step = run.state.step
        column.download_button(
            f"Model {label} ({run.loss.loss_id}, step {step})",
            data=lambda model=run.model: export.model_bytes(model),
            file_name=f"unet_run{label}_{run.loss.loss_id}_step{step}.keras",
            mime="application/octet-stream", key=f"export_model_{label}", icon=":material/download:", on_click="ignore",
        )
