"""Compute other libraries' losses on fixed inputs and write them to tests/data/library_values.json.

Not run by CI. It runs in a separate virtual environment that holds PyTorch (CPU), MONAI,
segmentation_models_pytorch, kornia and Keras, and no TensorFlow (README, "Checked against the
libraries"). It records:

- ``library``: MONAI, smp and kornia losses (and torch's weighted cross-entropy) under several
  settings, each named in the translator's terms (explorer/conventions.py), with their values;
- ``defaults``: the default of every parameter of those losses, read from their signatures;
- ``snippets_torch``: each exported Keras snippet (explorer/export.py) run on Keras's PyTorch
  backend. The project's own interpreter writes the snippets (``--write-snippets DIR``, needs
  TensorFlow); this interpreter runs them.

tests/test_library_values.py feeds the same inputs to our losses and compares.

    LIBCHECK=/path/to/libcheck-venv/bin/python
    $LIBCHECK scripts/check_conventions.py --project-python .venv/bin/python
"""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import json
import os
import platform
import subprocess
import sys
import tempfile
import types
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "data" / "library_values.json"
SEED, B, C, H, W = 16, 2, 4, 8, 8
WEIGHTS = [0.5, 1.0, 2.0, 4.0]  # per-class weights used by the weighted settings


def make_inputs() -> dict:
    """Imbalanced labels (class 3 rare, absent from image 1) and logits that lean towards the
    truth, float32, channels first. 'absent' is the same with class 3 absent from both images."""
    rng = np.random.default_rng(SEED)
    labels = rng.choice(C, size=(B, H, W), p=[0.55, 0.25, 0.15, 0.05])
    labels[0, 2:4, 2:4] = 3  # class 3 present in image 0 ...
    labels[1][labels[1] == 3] = 1  # ... and absent from image 1
    onehot = np.eye(C)[labels].transpose(0, 3, 1, 2)
    logits = (rng.normal(scale=1.5, size=(B, C, H, W)) + 1.2 * onehot).astype(np.float32)
    absent = labels.copy()
    absent[absent == 3] = 2
    return {"main": labels, "absent": absent, "logits": logits}


# -- project side (the project's venv, with TensorFlow): write the snippets -------------------------


def snippet_cases() -> list[dict]:
    """Each loss at its defaults and with one parameter moved (the first float parameter, else the
    class weights, else probabilities instead of logits)."""
    from explorer import losses

    cases = []
    for loss_id, spec in losses.REGISTRY.items():
        cases.append({"name": f"{loss_id}-defaults", "loss_id": loss_id, "params": {}, "pred": "logits"})
        if spec.params:
            p = spec.params[0]
            value = 1e-3 if p.name == "smooth" else round(p.min + 0.37 * (p.max - p.min), 4)
            moved, pred = {p.name: value}, "logits"
        elif spec.uses_class_weights:
            moved, pred = {"class_weights": WEIGHTS}, "logits"
        else:
            moved, pred = {"from_logits": False}, "probs"
        cases.append({"name": f"{loss_id}-moved", "loss_id": loss_id, "params": moved, "pred": pred})
    return cases


def write_snippets(directory: Path) -> None:
    from explorer import export

    directory.mkdir(parents=True, exist_ok=True)
    cases = snippet_cases()
    for case in cases:
        (directory / f"{case['name']}.py").write_text(export.keras_snippet(case["loss_id"], case["params"]))
    (directory / "cases.json").write_text(json.dumps(cases))


# -- library side (the separate venv, with torch) ----------------------------------------------------


def import_smp_losses():
    """segmentation_models_pytorch.losses without the package's __init__: that one imports its
    encoders (timm, torchvision), which a CPU-only torch may not load; the losses need torch only."""
    if "segmentation_models_pytorch" not in sys.modules:
        spec = importlib.util.find_spec("segmentation_models_pytorch")
        package = types.ModuleType("segmentation_models_pytorch")
        package.__path__ = list(spec.submodule_search_locations)
        sys.modules["segmentation_models_pytorch"] = package
    import segmentation_models_pytorch.losses as smp_losses

    return smp_losses


def _kw(params: dict) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in params.items())


def library_cases():
    """(id, library, their loss name, params in the translator's terms, pred, call, function).
    pred: what our loss takes ('logits' or 'probs'); the function gets the torch tensors."""
    import kornia.losses as kl
    import monai.losses as ml
    import torch
    import torch.nn.functional as F

    smp = import_smp_losses()
    w = torch.tensor(WEIGHTS, dtype=torch.float64)
    cases = []

    def add(case_id, library, name, params, call, fn, pred="logits", inputs="main"):
        if inputs == "absent":
            call += "  # class 3 in neither image"
        cases.append(dict(id=case_id, library=library, name=name, params=params, pred=pred, inputs=inputs, call=call, fn=fn))

    # MONAI: one-hot targets (B, C, H, W) unless to_onehot_y.
    for case_id, params in [
        ("default", {"softmax": True}),
        ("no-background", {"softmax": True, "include_background": False}),
        ("batch", {"softmax": True, "batch": True}),
        ("jaccard", {"softmax": True, "jaccard": True}),
        ("weighted", {"softmax": True, "weight": WEIGHTS}),
        ("weighted-no-background", {"softmax": True, "include_background": False, "weight": WEIGHTS[1:]}),
        ("smooth-1", {"softmax": True, "smooth_nr": 1.0, "smooth_dr": 1.0}),
        ("smooth-nr0-dr1", {"softmax": True, "smooth_nr": 0.0, "smooth_dr": 1.0}),
    ]:
        add(f"monai-dice-{case_id}", "MONAI", "monai.losses.DiceLoss", params, f"DiceLoss({_kw(params)})(logits, onehot)",
            lambda t, p=params: ml.DiceLoss(**p)(t["logits"], t["onehot"]))
    add("monai-dice-probs", "MONAI", "monai.losses.DiceLoss", {}, "DiceLoss()(softmax(logits), onehot)",
        lambda t: ml.DiceLoss()(t["probs"], t["onehot"]), pred="probs")
    for case_id, params in [
        ("a0.3-b0.7", {"softmax": True, "alpha": 0.3, "beta": 0.7}),
        ("a0.8-b0.2-no-background-batch", {"softmax": True, "alpha": 0.8, "beta": 0.2, "include_background": False, "batch": True}),
    ]:
        add(f"monai-tversky-{case_id}", "MONAI", "monai.losses.TverskyLoss", params, f"TverskyLoss({_kw(params)})(logits, onehot)",
            lambda t, p=params: ml.TverskyLoss(**p)(t["logits"], t["onehot"]))
    for case_id, params in [
        ("sigmoid-default", {}),
        ("sigmoid-a0.25", {"alpha": 0.25}),
        ("sigmoid-no-background", {"alpha": 0.25, "include_background": False}),
        ("softmax-g2", {"use_softmax": True}),
        ("softmax-a0.25-g2", {"use_softmax": True, "alpha": 0.25}),
        ("softmax-a0.6-g0.5", {"use_softmax": True, "alpha": 0.6, "gamma": 0.5}),
        ("softmax-weighted-g1", {"use_softmax": True, "gamma": 1.0, "weight": WEIGHTS}),
        ("softmax-alpha-list", {"use_softmax": True, "alpha": [0.1, 0.2, 0.3, 0.4]}),
        ("softmax-no-background", {"use_softmax": True, "include_background": False}),
    ]:
        add(f"monai-focal-{case_id}", "MONAI", "monai.losses.FocalLoss", params, f"FocalLoss({_kw(params)})(logits, onehot)",
            lambda t, p=params: ml.FocalLoss(**p)(t["logits"], t["onehot"]))
    for case_id, params in [
        ("default", {"softmax": True}),
        ("batch", {"softmax": True, "batch": True}),
        ("no-background", {"softmax": True, "include_background": False}),
    ]:
        add(f"monai-gdice-{case_id}", "MONAI", "monai.losses.GeneralizedDiceLoss", params,
            f"GeneralizedDiceLoss({_kw(params)})(logits, onehot)",
            lambda t, p=params: ml.GeneralizedDiceLoss(**p)(t["logits"], t["onehot"]))
    for case_id, params in [
        ("default", {"softmax": True}),
        ("lambdas", {"softmax": True, "lambda_ce": 0.5, "lambda_dice": 2.0}),
        ("weighted-onehot", {"softmax": True, "weight": WEIGHTS}),
        ("weighted-labels", {"softmax": True, "weight": WEIGHTS, "to_onehot_y": True}),
        ("weighted-labels-no-background", {"softmax": True, "weight": WEIGHTS, "to_onehot_y": True, "include_background": False}),
    ]:
        def dicece(t, p=params):
            kwargs = {k: (torch.tensor(v, dtype=torch.float64) if k == "weight" else v) for k, v in p.items()}
            target = t["labels"][:, None] if p.get("to_onehot_y") else t["onehot"]
            return ml.DiceCELoss(**kwargs)(t["logits"], target)

        target = "labels[:, None]" if params.get("to_onehot_y") else "onehot"
        add(f"monai-dicece-{case_id}", "MONAI", "monai.losses.DiceCELoss", params, f"DiceCELoss({_kw(params)})(logits, {target})", dicece)

    # torch's cross-entropy with class weights: class-index targets and one-hot (probability) targets.
    add("torch-ce", "PyTorch", "torch.nn.CrossEntropyLoss", {}, "F.cross_entropy(logits, labels)",
        lambda t: F.cross_entropy(t["logits"], t["labels"]))
    add("torch-ce-weighted-indices", "PyTorch", "torch.nn.CrossEntropyLoss", {"weight": WEIGHTS, "target": "indices"},
        "F.cross_entropy(logits, labels, weight=w)", lambda t: F.cross_entropy(t["logits"], t["labels"], weight=w))
    add("torch-ce-weighted-probabilities", "PyTorch", "torch.nn.CrossEntropyLoss", {"weight": WEIGHTS, "target": "probabilities"},
        "F.cross_entropy(logits, onehot, weight=w)", lambda t: F.cross_entropy(t["logits"], t["onehot"], weight=w))

    # smp, mode='multiclass': class-index targets (B, H, W).
    for inputs in ("main", "absent"):
        add(f"smp-dice-default-{inputs}", "smp", "smp.losses.DiceLoss", {}, "DiceLoss('multiclass')(logits, labels)",
            lambda t: smp.DiceLoss("multiclass")(t["logits"], t["labels"]), inputs=inputs)
    for case_id, cls, params in [
        ("dice-smooth-0.25", "DiceLoss", {"smooth": 0.25}),
        ("dice-weighted", "DiceLoss", {"class_weights": WEIGHTS}),
        ("jaccard-default", "JaccardLoss", {}),
        ("jaccard-smooth-0.5", "JaccardLoss", {"smooth": 0.5}),
        ("tversky-a0.3-b0.7", "TverskyLoss", {"alpha": 0.3, "beta": 0.7}),
        ("tversky-a0.3-b0.7-g0.75", "TverskyLoss", {"alpha": 0.3, "beta": 0.7, "gamma": 0.75}),
        ("focal-default", "FocalLoss", {}),
        ("focal-a0.25-g2", "FocalLoss", {"alpha": 0.25}),
        ("focal-a0.6-g0.5", "FocalLoss", {"alpha": 0.6, "gamma": 0.5}),
        ("lovasz-batch", "LovaszLoss", {}),
        ("lovasz-per-image", "LovaszLoss", {"per_image": True}),
    ]:
        add(f"smp-{case_id}", "smp", f"smp.losses.{cls}", params, f"{cls}({_kw(dict(mode='multiclass', **params))})(logits, labels)",
            # float32 for Lovász: its code builds a float32 vector it dots with the errors.
            lambda t, c=cls, p=params: getattr(smp, c)("multiclass", **p)(
                t["logits"].float() if c == "LovaszLoss" else t["logits"], t["labels"]))

    # kornia: class-index targets; its focal_loss defaults to reduction='none', 'mean' asked here.
    for average in ("micro", "macro"):
        add(f"kornia-dice-{average}", "kornia", "kornia.losses.dice_loss", {"average": average},
            f"dice_loss(logits, labels, average={average!r})", lambda t, a=average: kl.dice_loss(t["logits"], t["labels"], average=a))
    for a, b in ((0.3, 0.7), (0.7, 0.3)):
        add(f"kornia-tversky-a{a}-b{b}", "kornia", "kornia.losses.tversky_loss", {"alpha": a, "beta": b},
            f"tversky_loss(logits, labels, alpha={a}, beta={b})",
            lambda t, a=a, b=b: kl.tversky_loss(t["logits"], t["labels"], alpha=a, beta=b))
    for alpha, gamma in ((None, 2.0), (0.25, 2.0), (0.6, 0.5)):
        add(f"kornia-focal-a{alpha}-g{gamma}", "kornia", "kornia.losses.focal_loss", {"alpha": alpha, "gamma": gamma},
            f"focal_loss(logits, labels, alpha={alpha}, gamma={gamma}, reduction='mean')",
            lambda t, a=alpha, g=gamma: kl.focal_loss(t["logits"], t["labels"], alpha=a, gamma=g, reduction="mean"))
    add("kornia-focal-a0.25-weighted", "kornia", "kornia.losses.focal_loss", {"alpha": 0.25, "gamma": 2.0, "weight": WEIGHTS},
        "focal_loss(logits, labels, alpha=0.25, gamma=2.0, reduction='mean', weight=w)",
        lambda t: kl.focal_loss(t["logits"], t["labels"], alpha=0.25, gamma=2.0, reduction="mean", weight=w))
    for alpha, gamma in ((0.25, 2.0), (0.6, 1.0)):
        add(f"kornia-binary-focal-a{alpha}-g{gamma}", "kornia", "kornia.losses.binary_focal_loss_with_logits",
            {"alpha": alpha, "gamma": gamma},
            f"binary_focal_loss_with_logits(logits, onehot, alpha={alpha}, gamma={gamma}, reduction='mean')",
            lambda t, a=alpha, g=gamma: kl.binary_focal_loss_with_logits(t["logits"], t["onehot"], alpha=a, gamma=g, reduction="mean"))
    return cases


def library_defaults() -> dict:
    """Every keyword default of the losses the translator covers, from the installed code."""
    import kornia.losses as kl
    import monai.losses as ml
    import torch

    smp = import_smp_losses()
    found = {}
    for name, obj in [
        ("monai.losses.DiceLoss", ml.DiceLoss), ("monai.losses.TverskyLoss", ml.TverskyLoss),
        ("monai.losses.FocalLoss", ml.FocalLoss), ("monai.losses.GeneralizedDiceLoss", ml.GeneralizedDiceLoss),
        ("monai.losses.DiceCELoss", ml.DiceCELoss),
        ("smp.losses.DiceLoss", smp.DiceLoss), ("smp.losses.JaccardLoss", smp.JaccardLoss),
        ("smp.losses.TverskyLoss", smp.TverskyLoss), ("smp.losses.FocalLoss", smp.FocalLoss),
        ("smp.losses.LovaszLoss", smp.LovaszLoss),
        ("kornia.losses.dice_loss", kl.dice_loss), ("kornia.losses.tversky_loss", kl.tversky_loss),
        ("kornia.losses.focal_loss", kl.focal_loss),
        ("kornia.losses.binary_focal_loss_with_logits", kl.binary_focal_loss_with_logits),
        ("torch.nn.CrossEntropyLoss", torch.nn.CrossEntropyLoss),
    ]:
        found[name] = {
            k: (p.default if isinstance(p.default, (bool, int, float, str, type(None))) else str(p.default))
            for k, p in inspect.signature(obj).parameters.items()
            if p.default is not inspect.Parameter.empty
        }
    return found


def tensors(labels: np.ndarray, logits: np.ndarray) -> dict:
    import torch

    z = torch.tensor(logits, dtype=torch.float64)
    y = torch.tensor(labels, dtype=torch.long)
    return {"logits": z, "probs": torch.softmax(z, 1), "labels": y,
            "onehot": torch.nn.functional.one_hot(y, C).permute(0, 3, 1, 2).to(torch.float64)}


def run_snippets(directory: Path, data: dict) -> dict:
    """Each snippet on Keras's PyTorch backend, channels last, float32 (what a user's model gives)."""
    os.environ["KERAS_BACKEND"] = "torch"
    import keras

    assert keras.backend.backend() == "torch"
    z = data["logits"].transpose(0, 2, 3, 1)
    y = np.eye(C, dtype=np.float32)[data["main"]]
    probs = np.exp(z - z.max(-1, keepdims=True))
    probs = (probs / probs.sum(-1, keepdims=True)).astype(np.float32)
    out = []
    for case in json.loads((directory / "cases.json").read_text()):
        spec = importlib.util.spec_from_file_location(f"snippet_{case['name'].replace('-', '_')}", directory / f"{case['name']}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        value = module.loss(y, z if case["pred"] == "logits" else probs)
        out.append(dict(case, value=float(keras.ops.convert_to_numpy(value))))
    assert "tensorflow" not in sys.modules, "the torch-backend run must not import TensorFlow"
    return {"backend": keras.backend.backend(), "cases": out}


def versions() -> dict:
    from importlib.metadata import version

    names = ["torch", "monai", "segmentation-models-pytorch", "kornia", "keras", "numpy"]
    return {"python": platform.python_version(), **{n: version(n) for n in names}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--write-snippets", type=Path, help="(project venv) write the Keras snippets to this folder and stop")
    parser.add_argument("--project-python", default=str(ROOT / ".venv" / "bin" / "python"),
                        help="the project's interpreter (with TensorFlow), used to write the snippets")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    if args.write_snippets:
        sys.path.insert(0, str(ROOT))
        write_snippets(args.write_snippets)
        return

    data = make_inputs()
    record = {
        "written_by": "scripts/check_conventions.py",
        "versions": versions(),
        "inputs": {
            "seed": SEED, "shape_nchw": [B, C, H, W], "weights": WEIGHTS,
            "labels": {k: data[k].tolist() for k in ("main", "absent")},
            "logits_nchw": data["logits"].astype(float).tolist(),
            "note": "labels (B, H, W); logits float32 channels first; our losses take them channels last (NHWC), "
                    "probs = softmax over the classes",
        },
        "defaults": library_defaults(),
        "library": [],
    }
    for case in library_cases():
        fn = case.pop("fn")
        value = fn(tensors(data[case["inputs"]], data["logits"]))
        record["library"].append(dict(case, value=float(value)))
    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if k not in ("KERAS_BACKEND", "PYTHONPATH")}
        env["TF_CPP_MIN_LOG_LEVEL"] = "3"
        subprocess.run([args.project_python, str(Path(__file__).resolve()), "--write-snippets", tmp], check=True, env=env, cwd=ROOT)
        record["snippets_torch"] = run_snippets(Path(tmp), data)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {args.out}: {len(record['library'])} library values, {len(record['snippets_torch']['cases'])} torch-backend snippet values")


if __name__ == "__main__":
    main()
