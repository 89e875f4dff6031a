"""explorer.export: the Keras snippet (run in a fresh interpreter against losses.get), the
configuration JSON and the link (round trips, and tampered input refused with clear messages), and
the .keras model export."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from explorer import export, losses, snippet
from explorer.model import build_unet
from explorer.training import RunConfig

NUM_CLASSES = 4


# -- the snippet ---------------------------------------------------------------------------------


VOID = 255


def _cases() -> list[tuple[str, str, dict]]:
    """Per loss: the defaults, one set-up with every kind of parameter moved, integer masks with a
    void label (ignore_index), and batch=True for region losses. Names ending in "-sparse" take
    the integer masks, the others one-hot targets."""
    cases = [("focal-list-alpha", "focal", {"alpha": [0.25, 1.0, 0.5, 2.0], "gamma": 1.5})]
    for loss_id, spec in losses.REGISTRY.items():
        cases.append((f"{loss_id}-defaults", loss_id, {}))
        cases.append((f"{loss_id}-void-sparse", loss_id, {"ignore_index": VOID}))
        varied = {p.name: round(p.min + 0.37 * (p.max - p.min), 4) for p in spec.params}
        if "smooth" in varied:
            varied["smooth"] = 1e-3
        if spec.uses_class_weights:
            varied["class_weights"] = [0.5, 1.5, 3.0, 7.25]
        if spec.kind == "region":
            varied["include_background"] = False
        cases.append((f"{loss_id}-varied", loss_id, varied))
        if spec.kind == "region":
            cases.append((f"{loss_id}-batch", loss_id, {"batch": True}))
    return cases


RUNNER = textwrap.dedent(
    """
    import importlib.util, json, sys
    import numpy as np
    import keras

    directory = sys.argv[1]
    targets = {"one-hot": np.load(f"{directory}/y.npy"), "sparse": np.load(f"{directory}/labels.npy")}
    z = np.load(f"{directory}/z.npy")
    names = json.load(open(f"{directory}/names.json"))
    out = {"explorer_importable": importlib.util.find_spec("explorer") is not None, "backend": keras.backend.backend()}
    modules = {}
    for name in names:
        spec = importlib.util.spec_from_file_location(f"snippet_{name.replace('-', '_')}", f"{directory}/{name}.py")
        modules[name] = module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        y = targets["sparse" if name.endswith("-sparse") else "one-hot"]
        out[name] = {"value": float(module.loss(y, z))}
        if keras.backend.backend() == "jax":
            import jax
            out[name]["gradient"] = np.asarray(jax.grad(lambda logits: module.loss(y, logits))(z)).tolist()
    # Checked before the round trips below: Keras's own serialization imports TensorFlow when present.
    out["tensorflow_imported"] = "tensorflow" in sys.modules
    for name, module in modules.items():
        # Serializable: a round trip through the Keras config gives the same loss.
        again = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(module.loss))
        out[name]["reloaded"] = float(again(targets["sparse" if name.endswith("-sparse") else "one-hot"], z))
    print(json.dumps(out))
    """
)


def _run_snippets(directory: Path, backend: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(TF_CPP_MIN_LOG_LEVEL="3", KERAS_BACKEND=backend, JAX_PLATFORMS="cpu")
    result = subprocess.run(
        [sys.executable, str(directory / "runner.py"), str(directory)],
        cwd=directory, env=env, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    got = json.loads(result.stdout.strip().splitlines()[-1])
    assert got.pop("backend") == backend
    assert got.pop("explorer_importable") is False, "the snippets must run where this project cannot be imported"
    return got


def test_every_snippet_gives_the_value_and_gradient_of_losses_get_on_tensorflow_and_on_jax(tmp_path: Path):
    """Each snippet, in a fresh interpreter where explorer cannot be imported, gives losses.get's
    value on Keras's TensorFlow backend, and on the JAX backend without TensorFlow ever being
    imported (the snippet needs Keras only), where jax.grad also gives TensorFlow's gradient."""
    rng = np.random.default_rng(7)
    labels = rng.integers(0, NUM_CLASSES, (3, 12, 12))
    labels[0, :4] = 0  # some structure, and class 3 absent from image 2 (an empty class)
    labels[2][labels[2] == 3] = 1
    y = np.eye(NUM_CLASSES, dtype=np.float32)[labels]
    z = rng.normal(scale=2.0, size=y.shape).astype(np.float32)
    sparse = labels.astype(np.int32)
    sparse[:, :, :3] = VOID  # a void border on the left of every image
    np.save(tmp_path / "y.npy", y)
    np.save(tmp_path / "labels.npy", sparse)
    np.save(tmp_path / "z.npy", z)
    expected, gradients = {}, {}
    for name, loss_id, params in _cases():
        code = snippet.keras_snippet(loss_id, params)
        imports = [n for n in ast.walk(ast.parse(code)) if isinstance(n, (ast.Import, ast.ImportFrom))]
        modules = {alias.name.split(".")[0] for n in imports if isinstance(n, ast.Import) for alias in n.names} | {
            n.module.split(".")[0] for n in imports if isinstance(n, ast.ImportFrom) and n.module
        }
        assert modules <= {"__future__", "keras"}, (name, modules)
        (tmp_path / f"{name}.py").write_text(code)
        loss = losses.get(loss_id, **params)
        logits = tf.constant(z)
        with tf.GradientTape() as tape:
            tape.watch(logits)
            value = loss(sparse if name.endswith("-sparse") else y, logits)
        expected[name] = float(value)
        gradients[name] = tape.gradient(value, logits).numpy()
    (tmp_path / "names.json").write_text(json.dumps(list(expected)))
    (tmp_path / "runner.py").write_text(RUNNER)

    for backend in ("tensorflow", "jax"):
        got = _run_snippets(tmp_path, backend)
        assert got.pop("tensorflow_imported") is (backend == "tensorflow")
        for name, value in expected.items():
            result = got[name]
            assert result["value"] == pytest.approx(value, rel=1e-5, abs=1e-7), (backend, name)
            assert result["reloaded"] == pytest.approx(result["value"], rel=1e-6, abs=1e-8), f"{backend} {name}: serialization changed the loss"
            if backend == "jax":
                np.testing.assert_allclose(result["gradient"], gradients[name], rtol=1e-4, atol=1e-6, err_msg=name)


def test_snippet_states_the_chosen_parameters_and_refuses_bad_ones():
    code = snippet.keras_snippet("tversky", {"alpha": 0.2, "beta": 0.8, "class_weights": [1, 2, 3, 4]})
    assert "alpha=0.2" in code and "beta=0.8" in code and "class_weights=(1.0, 2.0, 3.0, 4.0)" in code
    assert "class TverskyLoss(keras.losses.Loss)" in code and "loss = TverskyLoss()" in code
    assert "explorer" not in "".join(line for line in code.splitlines() if line.startswith(("import", "from")))
    compile(code, "tversky_loss.py", "exec")
    with pytest.raises(ValueError, match="unknown loss 'nope'"):
        snippet.keras_snippet("nope", {})
    with pytest.raises(ValueError, match="outside"):
        snippet.keras_snippet("tversky", {"alpha": 3.0})
    with pytest.raises(ValueError, match="no parameter 'delta'"):
        snippet.keras_snippet("dice", {"delta": 0.5})


# -- configuration JSON --------------------------------------------------------------------------


def _configs() -> tuple[dict[str, RunConfig], export.Settings]:
    shared = dict(learning_rate=3e-3, batch_size=8, seed=5, normalization="batch")
    configs = {
        "A": RunConfig("tversky", {"alpha": 0.45, "beta": 0.55, "smooth": 1e-4, "batch": True, "include_background": False}, (0.5, 1.0, 2.0, 3.25), **shared),
        "B": RunConfig("focal", {"alpha": 0.8, "gamma": 1.5}, (1.0, 2.0, 3.0, 4.0), **shared),
        "C": RunConfig("ce", {}, None, **shared),
    }
    settings = export.Settings(max_steps=300, steps_per_tick=7, evaluate_every=25, schemes={"A": "inverse", "B": "balanced"})
    return configs, settings


def test_config_json_round_trip():
    configs, settings = _configs()
    text = export.config_json(configs, settings)
    data = json.loads(text)
    assert data["app"] == export.APP and data["version"] == export.VERSION
    assert [r["label"] for r in data["runs"]] == ["A", "B", "C"]
    back, back_settings = export.parse_config(text, num_classes=NUM_CLASSES)
    assert back == configs
    assert back_settings == settings
    # Bytes (an uploaded file) read the same.
    assert export.parse_config(text.encode(), num_classes=NUM_CLASSES)[0] == configs


def _tamper(path: tuple, value):
    configs, settings = _configs()
    data = json.loads(export.config_json(configs, settings))
    target = data
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return json.dumps(data)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        (b"\xff\xfe", "not UTF-8"),
        ("x" * (export.MAX_CONFIG_CHARS + 1), "characters long"),
        (_tamper(("app",), "other-app"), "not a configuration of this app"),
        (_tamper(("version",), 2), "unsupported configuration version 2"),
        (_tamper(("runs", 0, "loss"), "dicey"), "unknown loss 'dicey'"),
        (_tamper(("runs", 0, "params", "alpha"), 7), "alpha=7.0 is outside"),
        (_tamper(("runs", 0, "params", "alpha"), "0.3"), "must be a number"),
        (_tamper(("runs", 0, "params", "delta"), 0.3), "no parameter 'delta'"),
        (_tamper(("runs", 0, "params", "batch"), 1), "must be True or False"),
        (_tamper(("runs", 0, "class_weights"), [1, 2]), "2 entries for 4 classes"),
        (_tamper(("runs", 0, "class_weights"), [1, -2, 3, 4]), "outside"),
        (_tamper(("runs", 2, "class_weights"), [1, 2, 3, 4]), "does not use class weights"),
        (_tamper(("runs", 0, "scheme"), "secret"), "unknown weighting scheme"),
        (_tamper(("runs", 1, "label"), "C"), "runs are A, B, C in order"),
        (_tamper(("runs",), []), "1 to 3 runs"),
        (_tamper(("settings", "batch_size"), "16"), "batch_size must be a whole number"),
        (_tamper(("settings", "learning_rate"), float("inf")) .replace("Infinity", "1e999"), "learning_rate"),
        (_tamper(("settings", "seed"), KeyError), "missing field 'seed'"),
        (_tamper(("settings", "speed"), 3), "unknown field 'speed'"),
        (_tamper(("settings", "normalization"), "layer"), "unknown normalization 'layer'"),
        (_tamper(("extra",), 1), "unknown field 'extra'"),
    ],
)
def test_parse_config_refuses_tampered_text_with_a_clear_message(text, message):
    with pytest.raises(ValueError, match=message):
        export.parse_config(text, num_classes=NUM_CLASSES)


def test_a_configuration_saved_before_normalization_existed_means_the_default():
    configs, _ = export.parse_config(_tamper(("settings", "normalization"), KeyError), num_classes=NUM_CLASSES)
    assert {c.normalization for c in configs.values()} == {"group"}
    link = _link(norm=None)
    assert {c.normalization for c in export.from_query_params(link, num_classes=NUM_CLASSES)[0].values()} == {"group"}
    assert export.to_query_params(*_configs())["norm"] == "batch"


# -- the link --------------------------------------------------------------------------------------


def test_query_params_round_trip_and_readable():
    configs, settings = _configs()
    params = export.to_query_params(configs, settings)
    assert all(isinstance(v, str) for v in params.values())
    assert params["A"].startswith("tversky~alpha~0.45~beta~0.55")
    from urllib.parse import quote_plus

    assert quote_plus(params["A"]) == params["A"], "a run's field must survive URL encoding unchanged"
    back, back_settings = export.from_query_params(params, num_classes=NUM_CLASSES)
    assert back == configs and back_settings == settings
    # As st.query_params gives repeated-value lists, and with Streamlit's own embed keys.
    listed = {k: [v] for k, v in params.items()} | {"embed": ["true"]}
    assert export.from_query_params(listed, num_classes=NUM_CLASSES)[0] == configs


def _link(**changes) -> dict:
    configs, settings = _configs()
    params = export.to_query_params(configs, settings)
    for key, value in changes.items():
        if value is None:
            params.pop(key)
        else:
            params[key] = value
    return params


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (_link(v=None), "not made by this app"),
        (_link(v="9"), "version '9'"),
        (_link(hack="1"), "unknown parameter 'hack'"),
        (_link(B=None), "without a gap"),
        (_link(A=None, B=None, C=None), "names no run"),
        (_link(A="dicey"), "unknown loss 'dicey'"),
        (_link(A="tversky~alpha"), "does not read as"),
        (_link(A="tversky~alpha~lots"), "alpha must be a number"),
        (_link(A="tversky~alpha~nan"), "must be finite"),
        (_link(A="tversky~alpha~1.5"), "outside"),
        (_link(A="tversky~alpha~0.2~alpha~0.3"), "given twice"),
        (_link(A="tversky~gamma~0.2"), "no parameter 'gamma'"),
        (_link(A="tversky~batch~2"), "must be 0 or 1"),
        (_link(A="tversky~w0~1~w1~1~w3~1"), "class weights w0…w3 expected"),
        (_link(A="tversky~w0~-1~w1~1~w2~1~w3~1"), "outside"),
        (_link(C="ce~w0~1~w1~1~w2~1~w3~1"), "no parameter 'w0'"),
        (_link(lr="fast"), "learning_rate must be a number"),
        (_link(bs="8.5"), "batch_size must be a whole number"),
        ({**_link(), "A": ["ce", "dice"]}, "appears 2 times"),
        (_link(A="ce" * 2000), "characters long"),
    ],
)
def test_tampered_links_are_refused_with_a_clear_message(params, message):
    with pytest.raises(ValueError, match=message):
        export.from_query_params(params, num_classes=NUM_CLASSES)


# -- the model -------------------------------------------------------------------------------------


def test_model_export_loads_with_keras_and_predicts_the_same(tmp_path: Path):
    model = build_unet(NUM_CLASSES, input_shape=(32, 32, 3), depth=2, width=4, seed=3)
    data = export.model_bytes(model)
    assert data[:2] == b"PK", "a .keras file is a zip archive"
    path = tmp_path / "model.keras"
    path.write_bytes(data)
    loaded = keras.models.load_model(path)
    x = np.random.default_rng(0).random((2, 32, 32, 3), dtype=np.float32)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6, atol=1e-6)
