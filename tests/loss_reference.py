"""Independent float64 references for every loss of docs/losses.md, written from the
definitions with plain loops and explicit numpy (no TensorFlow, nothing shared with
explorer/losses.py).

Each ``reference(loss_id, y, z, **params)`` takes a one-hot target and logits of shape
(B, H, W, C) and returns per-pixel values (B, H, W) for pixel-wise losses, per-image values (B,)
for region losses, or a 0-d array when ``batch=True``.

``reference_ignoring(loss_id, labels, z, ignore_index, **params)`` takes integer labels (B, H, W)
with a void label instead: it cuts the void pixels out and evaluates ``reference`` on what is
left, so it shares no masking logic with the code under test.
"""

from __future__ import annotations

import math

import numpy as np


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def log_softmax(z: np.ndarray) -> np.ndarray:
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _pixels(y: np.ndarray):
    b, h, w, _ = y.shape
    for i in range(b):
        for r in range(h):
            for c in range(w):
                yield i, r, c


def _weights(class_weights, num_classes):
    return np.ones(num_classes) if class_weights is None else np.asarray(class_weights, float)


# ---- pixel-wise ------------------------------------------------------------------------------


def ce(y, z):
    logp = log_softmax(z)
    out = np.zeros(y.shape[:3])
    for i, r, c in _pixels(y):
        out[i, r, c] = -sum(y[i, r, c, k] * logp[i, r, c, k] for k in range(y.shape[-1]))
    return out


def weighted_ce(y, z, class_weights=None):
    logp = log_softmax(z)
    w = _weights(class_weights, y.shape[-1])
    out = np.zeros(y.shape[:3])
    for i, r, c in _pixels(y):
        out[i, r, c] = -sum(w[k] * y[i, r, c, k] * logp[i, r, c, k] for k in range(y.shape[-1]))
    return out


def bce(y, z):
    out = np.zeros(y.shape[:3])
    for i, r, c in _pixels(y):
        terms = []
        for k in range(y.shape[-1]):
            s = sigmoid(z[i, r, c, k])
            terms.append(-(y[i, r, c, k] * math.log(s) + (1 - y[i, r, c, k]) * math.log(1 - s)))
        out[i, r, c] = np.mean(terms)
    return out


def focal(y, z, alpha, gamma, class_weights=None):
    p, logp = softmax(z), log_softmax(z)
    w = _weights(class_weights, y.shape[-1])
    out = np.zeros(y.shape[:3])
    for i, r, c in _pixels(y):
        total = 0.0
        for k in range(y.shape[-1]):
            total -= alpha * w[k] * y[i, r, c, k] * (1 - p[i, r, c, k]) ** gamma * logp[i, r, c, k]
        out[i, r, c] = total
    return out


def binary_focal(y, z, alpha, gamma):
    out = np.zeros(y.shape[:3])
    for i, r, c in _pixels(y):
        terms = []
        for k in range(y.shape[-1]):
            s, t = sigmoid(z[i, r, c, k]), y[i, r, c, k]
            terms.append(
                -(alpha * t * (1 - s) ** gamma * math.log(s) + (1 - alpha) * (1 - t) * s**gamma * math.log(1 - s))
            )
        out[i, r, c] = np.mean(terms)
    return out


# ---- region ----------------------------------------------------------------------------------


def _groups(y, p, batch):
    """(target, probabilities) per image, or the whole batch as one group."""
    if batch:
        return [(y.reshape(-1, y.shape[-1]), p.reshape(-1, p.shape[-1]))]
    return [(y[i].reshape(-1, y.shape[-1]), p[i].reshape(-1, p.shape[-1])) for i in range(y.shape[0])]


def _counts(t, q):
    """Soft TP, FP, FN of one class from its target column t and probability column q."""
    tp = fp = fn = 0.0
    for ti, qi in zip(t, q):
        tp += qi * ti
        fp += qi * (1 - ti)
        fn += (1 - qi) * ti
    return tp, fp, fn


def _ratio_loss(num, den):
    return 0.0 if den == 0 else 1.0 - num / den


def _aggregate(per_group, class_weights, include_background, batch):
    """per_group: list of per-class loss lists. Weighted mean over the included classes."""
    out = []
    for losses in per_group:
        classes = range(len(losses)) if include_background else range(1, len(losses))
        w = _weights(class_weights, len(losses))
        out.append(sum(w[c] * losses[c] for c in classes) / sum(w[c] for c in classes))
    return np.array(out[0]) if batch else np.array(out)


def _per_class_region(y, z, batch, class_loss):
    p = softmax(z)
    return [
        [class_loss(*_counts(t[:, c], q[:, c])) for c in range(y.shape[-1])] for t, q in _groups(y, p, batch)
    ]


def dice(y, z, smooth, class_weights=None, batch=False, include_background=True):
    per = _per_class_region(y, z, batch, lambda tp, fp, fn: _ratio_loss(2 * tp + smooth, 2 * tp + fp + fn + smooth))
    return _aggregate(per, class_weights, include_background, batch)


def iou(y, z, smooth, class_weights=None, batch=False, include_background=True):
    per = _per_class_region(y, z, batch, lambda tp, fp, fn: _ratio_loss(tp + smooth, tp + fp + fn + smooth))
    return _aggregate(per, class_weights, include_background, batch)


def tversky(y, z, alpha, beta, smooth, class_weights=None, batch=False, include_background=True):
    per = _per_class_region(
        y, z, batch, lambda tp, fp, fn: _ratio_loss(tp + smooth, tp + alpha * fp + beta * fn + smooth)
    )
    return _aggregate(per, class_weights, include_background, batch)


def focal_tversky(y, z, alpha, beta, gamma, smooth, class_weights=None, batch=False, include_background=True):
    per = _per_class_region(
        y, z, batch, lambda tp, fp, fn: _ratio_loss(tp + smooth, tp + alpha * fp + beta * fn + smooth) ** gamma
    )
    return _aggregate(per, class_weights, include_background, batch)


def sensitivity_specificity(y, z, r, smooth, class_weights=None, batch=False, include_background=True):
    p = softmax(z)
    per = []
    for t, q in _groups(y, p, batch):
        losses = []
        for c in range(y.shape[-1]):
            sens_num = sum((t[i, c] - q[i, c]) ** 2 * t[i, c] for i in range(len(t)))
            spec_num = sum((t[i, c] - q[i, c]) ** 2 * (1 - t[i, c]) for i in range(len(t)))
            sens_den = t[:, c].sum() + smooth
            spec_den = (1 - t[:, c]).sum() + smooth
            sens = 0.0 if sens_den == 0 else sens_num / sens_den
            spec = 0.0 if spec_den == 0 else spec_num / spec_den
            losses.append(r * sens + (1 - r) * spec)
        per.append(losses)
    return _aggregate(per, class_weights, include_background, batch)


def generalized_dice(y, z, smooth, batch=False, include_background=True):
    p = softmax(z)
    out = []
    for t, q in _groups(y, p, batch):
        classes = list(range(y.shape[-1]) if include_background else range(1, y.shape[-1]))
        volumes = [t[:, c].sum() for c in classes]
        w = [1.0 / v**2 if v > 0 else math.inf for v in volumes]
        finite = [x for x in w if math.isfinite(x)]
        # MONAI: infinite weights become the largest finite one; with none, 0.
        largest = max(finite) if finite else 0.0
        w = [x if math.isfinite(x) else largest for x in w]
        num = den = 0.0
        for wc, c in zip(w, classes):
            tp, fp, fn = _counts(t[:, c], q[:, c])
            num += wc * 2 * tp
            den += wc * (2 * tp + fp + fn)
        out.append(_ratio_loss(num + smooth, den + smooth))
    return np.array(out[0]) if batch else np.array(out)


def ce_dice(y, z, lambda_ce, lambda_dice, smooth, class_weights=None, batch=False, include_background=True):
    pixel = weighted_ce(y, z, class_weights)
    ce_part = pixel.mean() if batch else pixel.mean(axis=(1, 2))
    return lambda_ce * ce_part + lambda_dice * dice(y, z, smooth, class_weights, batch, include_background)


def _lovasz_class(t, q):
    """The Lovász extension of the Jaccard loss Δ(M) = |M| / |G ∪ M| at the error vector |t − q|,
    evaluated from its definition: Σ_k e_(k) · (Δ(S_k) − Δ(S_{k−1})), S_k the k largest errors."""
    errors = np.abs(t - q)
    order = np.argsort(-errors, kind="stable")
    truth = set(np.flatnonzero(t > 0.5))
    chosen: set[int] = set()
    previous = 0.0
    total = 0.0
    for k in order:
        chosen.add(int(k))
        current = len(chosen) / len(truth | chosen)
        total += errors[k] * (current - previous)
        previous = current
    return total


def lovasz(y, z, class_weights=None, batch=False, include_background=True):
    p = softmax(z)
    out = []
    for t, q in _groups(y, p, batch):
        w = _weights(class_weights, y.shape[-1])
        classes = range(y.shape[-1]) if include_background else range(1, y.shape[-1])
        present = [c for c in classes if t[:, c].sum() > 0]
        total_w = sum(w[c] for c in present)
        value = sum(w[c] * _lovasz_class(t[:, c], q[:, c]) for c in present)
        out.append(0.0 if total_w == 0 else value / total_w)
    return np.array(out[0]) if batch else np.array(out)


def unified_focal(y, z, lambda_, delta, gamma, smooth, batch=False, include_background=True):
    """Yeung et al. 2022, asymmetric, class 0 background; mTI with δ on false negatives."""
    p, logp = softmax(z), log_softmax(z)
    focal_pixels = np.zeros(y.shape[:3])
    for i, r, c in _pixels(y):
        background = -(1 - delta) * (1 - p[i, r, c, 0]) ** gamma * y[i, r, c, 0] * logp[i, r, c, 0]
        foreground = -delta * sum(y[i, r, c, k] * logp[i, r, c, k] for k in range(1, y.shape[-1]))
        focal_pixels[i, r, c] = background + foreground
    focal_part = focal_pixels.mean() if batch else focal_pixels.mean(axis=(1, 2))
    per = []
    for t, q in _groups(y, p, batch):
        losses = []
        for c in range(y.shape[-1]):
            tp, fp, fn = _counts(t[:, c], q[:, c])
            mti = (tp + smooth) / (tp + delta * fn + (1 - delta) * fp + smooth)
            losses.append(1 - mti if c == 0 else (1 - mti) ** (1 - gamma))
        per.append(losses)
    tversky_part = _aggregate(per, None, include_background, batch)
    return lambda_ * focal_part + (1 - lambda_) * tversky_part


REFERENCES = {
    "ce": ce,
    "weighted_ce": weighted_ce,
    "bce": bce,
    "focal": focal,
    "binary_focal": binary_focal,
    "dice": dice,
    "iou": iou,
    "tversky": tversky,
    "focal_tversky": focal_tversky,
    "sensitivity_specificity": sensitivity_specificity,
    "generalized_dice": generalized_dice,
    "ce_dice": ce_dice,
    "lovasz": lovasz,
    "unified_focal": unified_focal,
}


def reference(loss_id: str, y: np.ndarray, z: np.ndarray, **params) -> np.ndarray:
    params = {k: v for k, v in params.items() if k != "from_logits"}
    return np.asarray(REFERENCES[loss_id](np.asarray(y, float), np.asarray(z, float), **params))


def reference_ignoring(loss_id: str, labels: np.ndarray, z: np.ndarray, ignore_index: int, kind: str, **params):
    """(values, scalar) of a loss on integer ``labels`` whose ``ignore_index`` pixels are removed.

    ``values`` is what the loss function returns: per-pixel (B, H, W) with 0 at void pixels for a
    pixel-wise loss, per-image (B,) (or 0-d with batch=True) for a region loss, each image
    evaluated on its own valid pixels only. ``scalar`` is the Keras-reduced loss: the mean over
    all valid pixels of the batch (pixel-wise), or the mean of ``values`` (region)."""
    labels = np.asarray(labels)
    z = np.asarray(z, float)
    classes = z.shape[-1]
    keep = labels != ignore_index
    # Each image's valid pixels as a (1, n, 1, C) image: one-hot built from the kept labels only.
    pieces = [(np.eye(classes)[labels[i][keep[i]]][None, :, None], z[i][keep[i]][None, :, None]) for i in range(len(z))]
    if kind == "pixel":
        values = np.zeros(labels.shape)
        for i, (y_i, z_i) in enumerate(pieces):
            values[i][keep[i]] = reference(loss_id, y_i, z_i, **params)[0, :, 0]
        return values, values[keep].mean()
    if params.get("batch"):
        y_all = np.concatenate([y_i for y_i, _ in pieces], axis=1)
        z_all = np.concatenate([z_i for _, z_i in pieces], axis=1)
        value = reference(loss_id, y_all, z_all, **params)
        return value, float(value)
    values = np.array([reference(loss_id, y_i, z_i, **params)[0] for y_i, z_i in pieces])
    return values, values.mean()
