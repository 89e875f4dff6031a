"""The Keras snippet a user takes home: one loss with its parameters as a self-contained
``keras.losses.Loss``, generated from the definitions in explorer/losses.py (the loss function and
every private helper and constant it uses, collected from their source), so the snippet and the
app compute the same thing by construction; tests/test_export.py runs every loss's snippet in a
fresh interpreter and compares it with ``losses.get``. Needs TensorFlow (explorer/losses.py), so it
is apart from explorer/export.py, which the page reads before TensorFlow is imported."""

from __future__ import annotations

import ast
import functools
import inspect
import textwrap
from collections.abc import Mapping

from explorer import loss_registry, losses


@functools.cache  # parses losses.py's source: the same answer on every rerun of the page
def _module_level_dependencies(fn, *also) -> tuple[str, ...]:
    """Names of losses.py's own functions and constants that ``fn`` needs, transitively, plus the
    functions ``also`` and what they need, in the order they appear in losses.py (constants
    first)."""
    module = losses
    seen: set[str] = {f.__name__ for f in also}
    pending = [fn.__name__, *seen]
    while pending:
        name = pending.pop()
        obj = getattr(module, name)
        tree = ast.parse(textwrap.dedent(inspect.getsource(obj)))
        for node in ast.walk(tree):
            if isinstance(node, ast.Name) and node.id != name and node.id not in seen and hasattr(module, node.id):
                value = getattr(module, node.id)
                if inspect.isfunction(value) and value.__module__ == module.__name__:
                    seen.add(node.id)
                    pending.append(node.id)
                elif isinstance(value, (int, float)) and not isinstance(value, bool) and node.id.lstrip("_").isupper():
                    seen.add(node.id)
    seen.discard(fn.__name__)

    def line(name: str) -> int:
        value = getattr(module, name)
        if inspect.isfunction(value):
            return inspect.getsourcelines(value)[1]
        source = inspect.getsource(module).splitlines()
        return next(i for i, text in enumerate(source) if text.startswith(f"{name} ="))

    constants = sorted((n for n in seen if not inspect.isfunction(getattr(module, n))), key=line)
    functions = sorted((n for n in seen if inspect.isfunction(getattr(module, n))), key=line)
    return tuple(constants + functions)


def _class_name(loss_id: str) -> str:
    return "".join(part.capitalize() for part in loss_id.split("_")) + "Loss"


@functools.cache
def _constant_line(name: str) -> str:
    source = inspect.getsource(losses).splitlines()
    for text in source:
        if text.startswith(f"{name} ="):
            return text
    return f"{name} = {getattr(losses, name)!r}"


def keras_snippet(loss_id: str, params: Mapping | None = None) -> str:
    """A self-contained Python module (Keras 3 only, nothing from this project; tested on the
    TensorFlow and JAX backends) defining ``loss_id`` with ``params`` (over the registry's
    defaults, class weights included) as a serializable ``keras.losses.Loss`` and an instance
    ``loss`` of it.

    Raises ValueError for an unknown loss or parameter, or a value out of range."""
    spec = loss_registry.REGISTRY.get(loss_id) if isinstance(loss_id, str) else None
    if spec is None:
        raise ValueError(f"unknown loss {loss_id!r}; valid ids: {', '.join(loss_registry.REGISTRY)}")
    values = losses.get(loss_id, **dict(params or {})).params  # validated, over the defaults
    fn = losses.FUNCTIONS[loss_id]
    # A pixel-wise loss's values are scaled so that Keras's mean skips ignored pixels (as SegLoss.call).
    pixel = spec.kind == "pixel"
    names = _module_level_dependencies(fn, *([losses.pixel_mean_scale] if pixel else []))
    constants = [n for n in names if not inspect.isfunction(getattr(losses, n))]
    helpers = [n for n in names if inspect.isfunction(getattr(losses, n))]
    cls = _class_name(loss_id)
    args = list(values)
    signature = ",\n        ".join(f"{k}={tuple(values[k])!r}" if isinstance(values[k], list) else f"{k}={values[k]!r}" for k in args)
    assignments = "\n".join(
        f"        self.{k} = None if {k} is None else [float(w) for w in {k}]" if k == "class_weights" else f"        self.{k} = {k}"
        for k in args
    )
    kwargs = ", ".join(f"{k}=self.{k}" for k in args)
    config = ", ".join(f"{k}=self.{k}" for k in args)
    described = ", ".join(f"{k}={values[k]!r}" for k in args) or "no parameters"
    formula = spec.formula
    header = f'''r"""{spec.name} loss for Keras 3, exported by the Segmentation Loss Explorer.

Chosen set-up: {described}.
Formula (LaTeX): {formula}
Source: {spec.source}

{textwrap.fill(spec.notes, 96)}

Conventions: y_pred logits when from_logits=True (the default), else probabilities, shaped
(batch, ..., classes), channels last; y_true one-hot of the same shape, or integer labels
(batch, ...) or (batch, ..., 1). With ignore_index (e.g. 255, integer labels only) those pixels
count in no term. Generated from the explorer's own definitions; needs only Keras 3 (keras.ops);
its tests run it on the TensorFlow and JAX backends:

    from this_file import loss          # or {cls}(...) with other parameters
    model.compile(optimizer="adam", loss=loss)
    keras.models.load_model(path)       # after importing this file: the class is registered
"""

from __future__ import annotations

import keras
from keras import ops
'''
    parts = [header]
    if constants:
        parts.append("\n".join(_constant_line(n) for n in constants) + "\n")
    for name in helpers + [fn.__name__]:
        parts.append(inspect.getsource(getattr(losses, name)).rstrip() + "\n")
    parts.append(
        f'''@keras.saving.register_keras_serializable(package="seg_loss_snippet")
class {cls}(keras.losses.Loss):
    """{spec.name} as a keras.losses.Loss; the defaults are the exported set-up."""

    def __init__(
        self,
        {signature + "," if args else ""}
        name="{loss_id}",
        reduction="sum_over_batch_size",
        dtype=None,
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
{assignments if args else "        pass"}

    def call(self, y_true, y_pred):
        {"values = " if pixel else "return "}{fn.__name__}(y_true, y_pred{", " + kwargs if args else ""}){"""
        return values * pixel_mean_scale(y_true, y_pred, self.ignore_index)""" if pixel else ""}

    def get_config(self):
        config = super().get_config()
        config.update({config})
        return config


loss = {cls}()
'''
    )
    return "\n\n".join(p.rstrip("\n") + "\n" for p in parts)
