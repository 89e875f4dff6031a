"""What a user takes home besides the Keras snippet (explorer/snippet.py): the configuration as
JSON, a link that reopens the set-up, and the trained model as a ``.keras`` file. Pure: no
Streamlit, and no TensorFlow (a link is read before the page imports it).

- :func:`config_json` / :func:`parse_config` and :func:`to_query_params` /
  :func:`from_query_params` write and read the set-up (runs, losses, parameters, class weights,
  training settings), refusing anything malformed with a message that says what is wrong.
- :func:`model_bytes` writes a model as the bytes of a ``.keras`` file.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field

from explorer import loss_registry, weights
from explorer.run_config import DEFAULT_NORMALIZATION, NORMALIZATIONS, RunConfig

APP = "segmentation-loss-explorer"
VERSION = 1
RUN_LABELS = ("A", "B", "C")
MAX_CONFIG_CHARS = 100_000
_DATASET_SCHEMES = tuple(s for s, spec in weights.SCHEMES.items() if spec.dataset_level)


@dataclass(frozen=True)
class Settings:
    """The training settings shared by the runs that a RunConfig does not hold, and each run's
    weighting scheme (which filled its class weights; the weights themselves are in RunConfig)."""

    max_steps: int = 600
    steps_per_tick: int = 5
    evaluate_every: int = 20
    schemes: Mapping[str, str] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------
# The configuration as JSON


def _attr(settings, name: str, default):
    if settings is None:
        return default
    if isinstance(settings, Mapping):
        return settings.get(name, default)
    return getattr(settings, name, default)


def _run_dict(label: str, config: RunConfig, scheme: str | None) -> dict:
    spec = loss_registry.REGISTRY[config.loss_id]
    run = {"label": label, "loss": config.loss_id, "params": dict(config.loss_params)}
    if spec.uses_class_weights:
        run["class_weights"] = None if config.class_weights is None else [float(w) for w in config.class_weights]
        run["scheme"] = scheme or "balanced"
    return run


def config_dict(configs: Mapping[str, RunConfig], settings=None, schemes: Mapping[str, str] | None = None) -> dict:
    """The set-up as plain data: what :func:`config_json` writes."""
    if not configs:
        raise ValueError("there is no run to export")
    labels = list(configs)
    if labels != list(RUN_LABELS[: len(labels)]):
        raise ValueError(f"runs must be labelled {', '.join(RUN_LABELS[:len(labels)])} in order, got {labels}")
    first = next(iter(configs.values()))
    schemes = dict(schemes or _attr(settings, "schemes", {}) or {})
    return {
        "app": APP,
        "version": VERSION,
        "settings": {
            "learning_rate": float(first.learning_rate),
            "batch_size": int(first.batch_size),
            "seed": int(first.seed),
            "normalization": first.normalization,
            "max_steps": int(_attr(settings, "max_steps", Settings.max_steps)),
            "steps_per_tick": int(_attr(settings, "steps_per_tick", Settings.steps_per_tick)),
            "evaluate_every": int(_attr(settings, "evaluate_every", Settings.evaluate_every)),
        },
        "runs": [_run_dict(label, config, schemes.get(label)) for label, config in configs.items()],
    }


def config_json(configs: Mapping[str, RunConfig], settings=None, schemes: Mapping[str, str] | None = None) -> str:
    """The runs and the training settings as indented JSON (``settings``: a TrainingSettings,
    :class:`Settings` or mapping with max_steps, steps_per_tick, evaluate_every)."""
    return json.dumps(config_dict(configs, settings, schemes), indent=2, ensure_ascii=False) + "\n"


def _int(value, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) and not (isinstance(value, float) and value.is_integer()):
        raise ValueError(f"{name} must be a whole number, got {value!r}")
    value = int(value)
    if not low <= value <= high:
        raise ValueError(f"{name} = {value} is outside {low}..{high}")
    return value


def _float(value, name: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number, got {value!r}")
    value = float(value)
    if not (math.isfinite(value) and low <= value <= high):
        raise ValueError(f"{name} = {value!r} is outside [{low:g}, {high:g}]")
    return value


def _check_keys(data: Mapping, allowed: set[str], where: str, required: set[str] = frozenset()) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ValueError(f"{where}: unknown field {unknown[0]!r} (known: {', '.join(sorted(allowed))})")
    missing = sorted(required - set(data))
    if missing:
        raise ValueError(f"{where}: missing field {missing[0]!r}")


def _run_config(run: Mapping, label: str, shared: dict, num_classes: int | None) -> tuple[RunConfig, str | None]:
    where = f"run {label}"
    if not isinstance(run, Mapping):
        raise ValueError(f"{where} must be an object, got {type(run).__name__}")
    _check_keys(run, {"label", "loss", "params", "class_weights", "scheme"}, where, {"loss"})
    loss_id = run["loss"]
    if not isinstance(loss_id, str) or loss_id not in loss_registry.REGISTRY:
        raise ValueError(f"{where}: unknown loss {loss_id!r}; valid: {', '.join(loss_registry.REGISTRY)}")
    spec = loss_registry.REGISTRY[loss_id]
    params = run.get("params") or {}
    if not isinstance(params, Mapping):
        raise ValueError(f"{where}: params must be an object, got {type(params).__name__}")
    allowed = {p.name for p in spec.params} | ({"batch", "include_background"} if spec.kind == "region" else set())
    for key in params:
        if key not in allowed:
            raise ValueError(
                f"{where}: loss {loss_id!r} has no parameter {key!r} here; valid: {', '.join(sorted(allowed)) or 'none'}"
            )
    class_weights = run.get("class_weights")
    if class_weights is not None:
        if not spec.uses_class_weights:
            raise ValueError(f"{where}: loss {loss_id!r} does not use class weights")
        if not isinstance(class_weights, list) or not class_weights:
            raise ValueError(f"{where}: class_weights must be a list of numbers or null")
        if num_classes is not None and len(class_weights) != num_classes:
            raise ValueError(f"{where}: class_weights has {len(class_weights)} entries for {num_classes} classes")
        class_weights = tuple(_float(w, f"{where}: class weight {c}", 0.0, 1e4) for c, w in enumerate(class_weights))
    # The registry's own checks (ranges, booleans, weights that leave some class weighted).
    try:
        loss_registry.validated(spec, dict(params, **({"class_weights": list(class_weights)} if class_weights else {})))
    except ValueError as error:
        raise ValueError(f"{where}: {error}") from None
    values = {}
    for key, value in params.items():
        values[key] = bool(value) if key in ("batch", "include_background") else float(value)
    scheme = run.get("scheme")
    if scheme is not None and scheme not in _DATASET_SCHEMES:
        raise ValueError(f"{where}: unknown weighting scheme {scheme!r}; valid: {', '.join(_DATASET_SCHEMES)}")
    config = RunConfig(loss_id=loss_id, loss_params=values, class_weights=class_weights, **shared)
    return config, scheme


def from_dict(data, num_classes: int | None = None) -> tuple[dict[str, RunConfig], Settings]:
    """The inverse of :func:`config_dict`, validated. ValueError says what is wrong."""
    if not isinstance(data, Mapping):
        raise ValueError(f"the configuration must be a JSON object, got {type(data).__name__}")
    if data.get("app") != APP:
        raise ValueError(f"this is not a configuration of this app (its 'app' field is {data.get('app')!r}, expected {APP!r})")
    if data.get("version") != VERSION:
        raise ValueError(f"unsupported configuration version {data.get('version')!r}; this app reads version {VERSION}")
    _check_keys(data, {"app", "version", "settings", "runs"}, "the configuration", {"settings", "runs"})
    raw = data["settings"]
    if not isinstance(raw, Mapping):
        raise ValueError("settings must be an object")
    required = {"learning_rate", "batch_size", "seed", "max_steps", "steps_per_tick", "evaluate_every"}
    # "normalization" may be absent: set-ups saved before it existed mean the default.
    _check_keys(raw, required | {"normalization"}, "settings", required)
    normalization = raw.get("normalization", DEFAULT_NORMALIZATION)
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"settings: unknown normalization {normalization!r}; valid: {', '.join(NORMALIZATIONS)}")
    shared = dict(
        learning_rate=_float(raw["learning_rate"], "learning_rate", 1e-6, 100.0),
        batch_size=_int(raw["batch_size"], "batch_size", 1, 1024),
        seed=_int(raw["seed"], "seed", 0, 2**31 - 1),
        normalization=normalization,
    )
    runs = data["runs"]
    if not isinstance(runs, list) or not 1 <= len(runs) <= len(RUN_LABELS):
        raise ValueError(f"runs must be a list of 1 to {len(RUN_LABELS)} runs")
    configs, schemes = {}, {}
    for label, run in zip(RUN_LABELS, runs):
        if isinstance(run, Mapping) and run.get("label", label) != label:
            raise ValueError(f"run {len(configs) + 1} is labelled {run.get('label')!r}; runs are A, B, C in order")
        configs[label], scheme = _run_config(run, label, shared, num_classes)
        if scheme is not None:
            schemes[label] = scheme
    settings = Settings(
        max_steps=_int(raw["max_steps"], "max_steps", 1, 1_000_000),
        steps_per_tick=_int(raw["steps_per_tick"], "steps_per_tick", 1, 1000),
        evaluate_every=_int(raw["evaluate_every"], "evaluate_every", 1, 100_000),
        schemes=schemes,
    )
    return configs, settings


def parse_config(text: str | bytes, num_classes: int | None = None) -> tuple[dict[str, RunConfig], Settings]:
    """Read :func:`config_json`'s output back: (configs by label, settings). ValueError with a
    message that says what is wrong for anything else."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError("the file is not UTF-8 text: not a configuration of this app") from None
    if len(text) > MAX_CONFIG_CHARS:
        raise ValueError(f"the configuration is {len(text)} characters long; a real one is a few hundred")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"not valid JSON: {error.msg} at line {error.lineno}, column {error.colno}") from None
    return from_dict(data, num_classes)


# --------------------------------------------------------------------------------------------
# The link: query parameters
#
#   ?v=1&lr=0.001&bs=16&seed=0&steps=600&tick=5&every=20&norm=group
#    &A=ce&B=focal_tversky~alpha~0.3~beta~0.7~gamma~0.75~smooth~1e-05~batch~0~bg~1~scheme~balanced~w0~0.28~w1~2.8…
#
# Each run is its loss id followed by name~value pairs: characters that URL encoding leaves as they are.

_SEP = "~"
_SETTINGS_KEYS = {"lr": "learning_rate", "bs": "batch_size", "seed": "seed", "steps": "max_steps", "tick": "steps_per_tick", "every": "evaluate_every"}
_IGNORED_KEYS = {"embed", "embed_options"}  # Streamlit's own
MAX_QUERY_VALUE_CHARS = 2000


def to_query_params(configs: Mapping[str, RunConfig], settings=None, schemes: Mapping[str, str] | None = None) -> dict[str, str]:
    """The set-up as query parameters (all strings) for ``st.query_params``."""
    data = config_dict(configs, settings, schemes)
    s = data["settings"]
    out = {"v": str(VERSION)}
    for short, long in _SETTINGS_KEYS.items():
        out[short] = repr(s[long]) if isinstance(s[long], float) else str(s[long])
    out["norm"] = s["normalization"]
    for run in data["runs"]:
        parts = [run["loss"]]
        for key, value in run["params"].items():
            name = "bg" if key == "include_background" else key
            parts += [name, str(int(value)) if isinstance(value, bool) else repr(float(value))]
        if "scheme" in run:
            parts += ["scheme", run["scheme"]]
        for c, w in enumerate(run.get("class_weights") or []):
            parts += [f"w{c}", repr(float(w))]
        out[run["label"]] = _SEP.join(parts)
    return out


def _parse_value(text: str, what: str):
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{what} must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"{what} must be finite, got {text!r}")
    return value


def _run_from_query(label: str, text: str, num_classes: int | None) -> dict:
    where = f"run {label}"
    fields = text.split(_SEP)
    loss_id = fields[0]
    if loss_id not in loss_registry.REGISTRY:
        raise ValueError(f"{where}: unknown loss {loss_id!r}; valid: {', '.join(loss_registry.REGISTRY)}")
    spec = loss_registry.REGISTRY[loss_id]
    pairs = fields[1:]
    if len(pairs) % 2:
        raise ValueError(f"{where}: '{text}' does not read as loss~name~value~name~value…")
    run: dict = {"label": label, "loss": loss_id, "params": {}}
    weights_by_class: dict[int, float] = {}
    floats = {p.name for p in spec.params}
    for name, value in zip(pairs[::2], pairs[1::2]):
        if name in ("batch", "bg") and spec.kind == "region":
            if value not in ("0", "1"):
                raise ValueError(f"{where}: {name} must be 0 or 1, got {value!r}")
            run["params"]["include_background" if name == "bg" else "batch"] = value == "1"
        elif name in floats:
            run["params"][name] = _parse_value(value, f"{where}: {name}")
        elif name == "scheme" and spec.uses_class_weights:
            run["scheme"] = value
        elif name.startswith("w") and name[1:].isdigit() and spec.uses_class_weights:
            weights_by_class[int(name[1:])] = _parse_value(value, f"{where}: class weight {name[1:]}")
        else:
            valid = sorted(floats | ({"batch", "bg"} if spec.kind == "region" else set()) | ({"scheme", "w0…"} if spec.uses_class_weights else set()))
            raise ValueError(f"{where}: loss {loss_id!r} has no parameter {name!r} here; valid: {', '.join(valid) or 'none'}")
        if name in run["params"] and list(pairs[::2]).count(name) > 1:
            raise ValueError(f"{where}: {name} is given twice")
    if weights_by_class:
        expected = num_classes if num_classes is not None else max(weights_by_class) + 1
        if sorted(weights_by_class) != list(range(expected)):
            raise ValueError(f"{where}: class weights w0…w{expected - 1} expected, got {', '.join(f'w{c}' for c in sorted(weights_by_class))}")
        run["class_weights"] = [weights_by_class[c] for c in range(expected)]
    return run


def from_query_params(params: Mapping, num_classes: int | None = None) -> tuple[dict[str, RunConfig], Settings]:
    """Read :func:`to_query_params`'s output (as ``st.query_params.to_dict()`` gives it, values
    strings or lists of strings) back to (configs, settings). ValueError says what is wrong."""
    values: dict[str, str] = {}
    for key, value in params.items():
        if key in _IGNORED_KEYS:
            continue
        if isinstance(value, (list, tuple)):
            if len(value) != 1:
                raise ValueError(f"the parameter {key!r} appears {len(value)} times in the link")
            value = value[0]
        if not isinstance(value, str):
            raise ValueError(f"the parameter {key!r} is not text")
        if len(value) > MAX_QUERY_VALUE_CHARS:
            raise ValueError(f"the parameter {key!r} is {len(value)} characters long: not a link of this app")
        values[key] = value
    if values.get("v") != str(VERSION):
        raise ValueError(
            "this link was not made by this app (it has no v=1)" if "v" not in values
            else f"this link has version {values['v']!r}; this app reads version {VERSION}"
        )
    known = {"v", "norm"} | set(_SETTINGS_KEYS) | set(RUN_LABELS)
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"the link has an unknown parameter {unknown[0]!r} (known: {', '.join(sorted(known))})")
    labels = [label for label in RUN_LABELS if label in values]
    if not labels:
        raise ValueError("the link names no run (A=…)")
    if labels != list(RUN_LABELS[: len(labels)]):
        raise ValueError(f"the link's runs must be {', '.join(RUN_LABELS[:len(labels)])} without a gap, got {', '.join(labels)}")
    defaults = Settings()
    default_settings = {
        "learning_rate": 1e-3, "batch_size": 16, "seed": 0,
        "max_steps": defaults.max_steps, "steps_per_tick": defaults.steps_per_tick, "evaluate_every": defaults.evaluate_every,
    }
    settings = dict(default_settings)
    for short, long in _SETTINGS_KEYS.items():
        if short in values:
            number = _parse_value(values[short], long)
            settings[long] = number if long == "learning_rate" else (int(number) if number.is_integer() else number)
    settings["normalization"] = values.get("norm", DEFAULT_NORMALIZATION)
    data = {
        "app": APP,
        "version": VERSION,
        "settings": settings,
        "runs": [_run_from_query(label, values[label], num_classes) for label in labels],
    }
    return from_dict(data, num_classes)


# --------------------------------------------------------------------------------------------
# The model


def model_bytes(model) -> bytes:
    """The model as the bytes of a ``.keras`` file (architecture and weights, no optimizer state,
    no loss: the model opens with ``keras.models.load_model`` without this project)."""
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "model.keras")
        model.save(path, include_optimizer=False)
        with open(path, "rb") as handle:
            return handle.read()
