"""Opening a link: the query parameters of the page's address, applied to the sidebar's widget keys
before the sidebar creates its widgets. Called once per session at the top of app.py.

A link comes from the export panel's "Make a link" (explorer.export.to_query_params). Anything
that does not read as one — edited by hand, cut short, made by another version — is refused whole
with a message that says what is wrong, and the page keeps its defaults: never a crash, never a
half-applied set-up.
"""

from __future__ import annotations

import streamlit as st

from explorer import export, loss_registry, weights
from explorer.ui import sidebar

_DONE = "_link_checked"
_MESSAGE = "_link_message"  # (kind, text), shown on every run of the session until it ends


def apply(counts: weights.ClassCounts) -> None:
    """Read st.query_params once per session; if they hold a link, set the sidebar's widget keys
    for the dataset whose class counts are ``counts``."""
    if not st.session_state.get(_DONE):
        st.session_state[_DONE] = True
        params = {key: st.query_params.get_all(key) for key in st.query_params}
        params = {key: value for key, value in params.items() if key not in ("embed", "embed_options")}
        if params:
            st.session_state[_MESSAGE] = _apply(params, counts)
    show_message()


def show_message() -> None:
    message = st.session_state.get(_MESSAGE)
    if not message:
        return
    kind, text = message
    if kind == "ok":
        st.info(text, icon=":material/link:")
    else:
        st.warning(text, icon=":material/link_off:")


def _apply(params: dict, counts: weights.ClassCounts) -> tuple[str, str]:
    try:
        configs, settings = export.from_query_params(params, num_classes=len(counts.pixels))
        values = widget_values(configs, settings, counts)
    except ValueError as error:
        return "error", (
            f"This link could not be opened: {error}. The page shows its defaults instead; "
            "make a new link from the Export section."
        )
    for key, value in values.items():
        st.session_state[key] = value
    runs = ", ".join(f"{label}: {loss_registry.REGISTRY[c.loss_id].name}" for label, c in configs.items())
    return "ok", f"Opened from a link: {len(configs)} run{'s' if len(configs) > 1 else ''} ({runs}) with their parameters and weights."


def _option(value: float, options: tuple, what: str):
    for option in options:
        if abs(option - value) <= 1e-9 * max(abs(option), 1.0):
            return option
    raise ValueError(f"{what} {value:g} is not one the page offers ({', '.join(f'{o:g}' for o in options)})")


def _in_range(value, bounds: tuple, what: str):
    low, high = bounds
    if not low <= value <= high:
        raise ValueError(f"{what} {value:g} is outside {low:g}..{high:g}")
    return value


def widget_values(configs: dict, settings: export.Settings, counts: weights.ClassCounts) -> dict:
    """The sidebar widget keys and the values that reproduce ``configs`` and ``settings`` on the
    dataset with class counts ``counts``. ValueError when a value is one the widgets cannot take."""
    keys = sidebar.SHARED_KEYS
    num_classes = len(counts.pixels)
    if len(configs) not in sidebar.NUM_RUNS:
        raise ValueError(f"{len(configs)} runs: the page shows {', '.join(map(str, sidebar.NUM_RUNS))}")
    first = next(iter(configs.values()))
    values = {
        keys["num_runs"]: len(configs),
        keys["learning_rate"]: _option(first.learning_rate, sidebar.LEARNING_RATES, "the learning rate"),
        keys["batch_size"]: _option(first.batch_size, sidebar.BATCH_SIZES, "the batch size"),
        keys["seed"]: int(_in_range(first.seed, sidebar.SEED_RANGE, "the seed")),
        keys["normalization"]: first.normalization,
        keys["max_steps"]: int(_in_range(settings.max_steps, sidebar.MAX_STEPS_RANGE, "train until step")),
        keys["steps_per_tick"]: int(_in_range(settings.steps_per_tick, sidebar.STEPS_PER_TICK_RANGE, "steps per round")),
        keys["evaluate_every"]: int(_in_range(settings.evaluate_every, sidebar.EVALUATE_EVERY_RANGE, "validate every")),
    }
    for label, config in configs.items():
        spec = loss_registry.REGISTRY[config.loss_id]
        values[sidebar.loss_key(label)] = config.loss_id
        for p in spec.params:
            if p.name in config.loss_params:
                values[sidebar.param_key(label, config.loss_id, p.name)] = float(config.loss_params[p.name])
        if spec.kind == "region":
            if "batch" in config.loss_params:
                values[sidebar.batch_key(label, config.loss_id)] = bool(config.loss_params["batch"])
            if "include_background" in config.loss_params:
                values[sidebar.background_key(label, config.loss_id)] = bool(config.loss_params["include_background"])
        if spec.uses_class_weights:
            scheme = settings.schemes.get(label, sidebar.DEFAULT_SCHEME)
            values[sidebar.scheme_key(label)] = scheme
            if config.class_weights is not None:
                if len(config.class_weights) != num_classes:
                    raise ValueError(f"run {label} has {len(config.class_weights)} class weights for {num_classes} classes")
                for c, w in enumerate(config.class_weights):
                    values[sidebar.weight_key(label, scheme, c, counts)] = float(_in_range(w, sidebar.WEIGHT_RANGE, f"run {label}'s class weight"))
    return values
