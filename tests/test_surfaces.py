"""explorer.surfaces: the plane, the gradient planes and the pixel curve against the losses
evaluated on concrete synthetic masks, against float64 formulas written here independently, and
against the reference values of docs/losses.md."""

from __future__ import annotations


import numpy as np
import pytest

from explorer import losses, plots, surfaces

LOSS_IDS = list(losses.REGISTRY)
RES = 21  # small grids: the tests check values, not speed


def clipped(x):
    """The synthetic image's probabilities: clipped to [EPS, 1 − EPS], as float32 holds them."""
    return np.clip(np.asarray(x, dtype=np.float64), surfaces.EPS, 1 - surfaces.EPS).astype(np.float32).astype(np.float64)
SHARES = [0.8822, 0.0878, 0.0242, 0.0058]  # the toy dataset's class shares (rounded)


def make(loss_id: str, weighted: bool = False, **params) -> losses.SegLoss:
    if weighted and losses.REGISTRY[loss_id].uses_class_weights:
        params["class_weights"] = [0.3, 2.5, 9.0, 40.0]
    return losses.get(loss_id, **params)


def concrete_loss(loss: losses.SegLoss, layout: surfaces.Layout, a: float, b: float, pair_weights, seed: int = 0) -> float:
    """The loss of one concrete 2-D, two-class image with ``layout``'s pixel counts, the class's
    pixels scattered at random, predicting the class with probability ``a`` on its pixels and ``b``
    elsewhere: built here from scratch and scored by a fresh two-class loss object."""
    rng = np.random.default_rng(seed)
    pixels, n, ch = layout.pixels, layout.class_pixels, layout.class_channel
    height = next(h for h in (4, 3, 2, 1) if pixels % h == 0)
    is_class = np.zeros(pixels, bool)
    is_class[rng.choice(pixels, n, replace=False)] = True
    is_class = is_class.reshape(height, pixels // height)
    q = clipped(np.where(is_class, a, b))  # the class's probability per pixel
    y = np.zeros((1, *is_class.shape, 2))
    y[0, ..., ch] = is_class
    y[0, ..., 1 - ch] = ~is_class
    p = np.zeros((1, *is_class.shape, 2))
    p[0, ..., ch], p[0, ..., 1 - ch] = q, 1 - q
    if loss.loss_id in surfaces.SIGMOID_LOSSES:
        z = np.log(p) - np.log1p(-p)
    else:
        z = np.log(p)
    params = {k: v for k, v in loss.params.items() if k != "class_weights"}
    if pair_weights is not None:
        params["class_weights"] = list(pair_weights)
    two_class = losses.get(loss.loss_id, **params)
    return float(two_class(y.astype(np.float32), z.astype(np.float32)))


# -- the API ---------------------------------------------------------------------------------


def test_plane_shapes_and_orientation():
    """values[i, j] is at a[j], b[i]: checked against the float64 cross-entropy of the image,
    share·(−log a) + (1 − share)·(−log(1 − b)), which is not symmetric in a and b."""
    loss = losses.get("ce")
    a, b, values = surfaces.plane(loss, 0.2, resolution=11)
    assert a.shape == (11,) and b.shape == (11,) and values.shape == (11, 11)
    np.testing.assert_allclose(a, np.linspace(0, 1, 11))
    np.testing.assert_allclose(b, np.linspace(0, 1, 11))
    share = surfaces.image_layout(0.2).share
    ca, cb = clipped(a), clipped(b)
    expected = share * -np.log(ca)[None, :] + (1 - share) * -np.log1p(-cb)[:, None]
    np.testing.assert_allclose(values, expected, rtol=2e-5, atol=1e-5)
    assert not np.allclose(values, values.T)


def test_rectangular_resolution_is_rejected_cleanly():
    with pytest.raises(ValueError, match="at least 2"):
        surfaces.plane(losses.get("ce"), 0.2, resolution=1)
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        surfaces.plane(losses.get("ce"), 0.0)


@pytest.mark.parametrize("fraction", [0.0058, 0.0242, 0.0878, 0.5, 0.8822, 0.999])
def test_layout_realises_the_share(fraction):
    layout = surfaces.image_layout(fraction)
    assert 1 <= layout.class_pixels <= layout.pixels - 1
    assert layout.pixels <= surfaces.MAX_PIXELS
    if 1 / surfaces.MAX_PIXELS < fraction < 1 - 1 / surfaces.MAX_PIXELS:
        assert abs(layout.share - fraction) / fraction <= surfaces.SHARE_TOLERANCE


def test_two_class_weights_mapping():
    w = [0.5, 2.0, 8.0, 40.0]
    shares = [0.7, 0.2, 0.08, 0.02]
    other = (0.7 * 0.5 + 0.2 * 2.0 + 0.08 * 8.0) / (0.7 + 0.2 + 0.08)
    np.testing.assert_allclose(surfaces.two_class_weights(w, 3, shares), [other, 40.0])
    np.testing.assert_allclose(surfaces.two_class_weights(w, 3), [0.5, 40.0])
    # The background as the class: channel 0 holds it.
    other0 = (0.2 * 2.0 + 0.08 * 8.0 + 0.02 * 40.0) / 0.3
    np.testing.assert_allclose(surfaces.two_class_weights(w, 0, shares), [0.5, other0])
    assert surfaces.two_class_weights(None, 2) is None


# -- one source of truth: the plane is the loss on a concrete image -----------------------------


POINTS = [(0, 0), (0, RES - 1), (RES - 1, 0), (RES - 1, RES - 1), (7, 13), (15, 4), (10, 10)]


WEIGHTINGS = [(i, False) for i in LOSS_IDS] + [(i, True) for i in LOSS_IDS if losses.REGISTRY[i].uses_class_weights]


@pytest.mark.parametrize("loss_id, weighted", WEIGHTINGS)
def test_plane_equals_the_loss_on_a_concrete_mask(loss_id, weighted):
    loss = make(loss_id, weighted)
    class_index, fraction = 3, SHARES[3]
    result = surfaces.planes(loss, fraction, RES, class_index=class_index, class_shares=SHARES)
    for i, j in POINTS:
        expected = concrete_loss(loss, result.layout, result.a[j], result.b[i], result.weights, seed=i * RES + j)
        assert result.values[i, j] == pytest.approx(expected, rel=2e-4, abs=2e-5), (loss_id, i, j)


@pytest.mark.parametrize("loss_id", ["dice", "tversky", "unified_focal", "iou"])
def test_plane_of_the_background_class_and_other_options(loss_id):
    """The class 0 in channel 0; include_background=False and batch=True (one image: pooled
    counts are the image's) evaluated as the loss itself does on the concrete image."""
    for flags in ({}, {"include_background": False}, {"batch": True}):
        loss = losses.get(loss_id, **flags)
        for class_index, fraction in ((0, SHARES[0]), (2, SHARES[2])):
            result = surfaces.planes(loss, fraction, RES, class_index=class_index)
            assert result.layout.class_channel == (0 if class_index == 0 else 1)
            for i, j in POINTS[:5]:
                expected = concrete_loss(loss, result.layout, result.a[j], result.b[i], None)
                assert result.values[i, j] == pytest.approx(expected, rel=2e-4, abs=2e-5), (flags, class_index, i, j)


def test_dice_plane_matches_an_independent_float64_formula():
    """Soft Dice of the two channels, per class 1 − (2TP + s)/(2TP + FP + FN + s), written from
    the definition with the synthetic image's counts."""
    s = 1e-5
    loss = losses.get("dice", smooth=s)
    result = surfaces.planes(loss, 0.1, RES)
    P, n = result.layout.pixels, result.layout.class_pixels
    a, b = clipped(result.a)[None, :], clipped(result.b)[:, None]
    tp1, fp1, fn1 = n * a, (P - n) * b, n * (1 - a)
    tp0, fp0, fn0 = (P - n) * (1 - b), n * (1 - a), (P - n) * b
    dice = lambda tp, fp, fn: 1 - (2 * tp + s) / (2 * tp + fp + fn + s)  # noqa: E731
    expected = (dice(tp0, fp0, fn0) + dice(tp1, fp1, fn1)) / 2
    np.testing.assert_allclose(result.values, expected, rtol=1e-4, atol=1e-6)


# -- gradients ------------------------------------------------------------------------------------


def test_gradients_match_finite_differences_of_the_concrete_loss():
    """A class pixel's gradient (×P) with respect to its true-class logit, against a central
    difference of the concrete image's loss when that one pixel's logit moves (float64 numpy
    through the loss in float32, so a coarse step)."""
    loss = losses.get("tversky", alpha=0.3, beta=0.7)
    result = surfaces.planes(loss, 0.25, RES)
    layout = result.layout
    i, j = 6, 12
    a, b = result.a[j], result.b[i]
    P, n = layout.pixels, layout.class_pixels
    q = np.array([a] * n + [b] * (P - n))
    y = np.zeros((1, 1, P, 2))
    y[0, 0, :n, 1] = 1
    y[0, 0, n:, 0] = 1
    z = np.stack([np.log1p(-q), np.log(q)], -1)[None, None]
    h = 1e-2

    def value(dz):
        zz = z.copy()
        zz[0, 0, 0, 1] += dz
        return float(loss(y.astype(np.float32), zz.astype(np.float32)))

    numeric = (value(h) - value(-h)) / (2 * h) * P
    assert result.missed[i, j] == pytest.approx(abs(numeric), rel=2e-2)


def test_weighted_ce_gradient_ratio_is_the_weight_ratio():
    """For weighted CE the missed pixel's gradient is w_c(1 − a), the false alarm's w_o·b
    (float64, from d/dz of −w log softmax): the ratio is (w_c/w_o)·(1 − a)/b, CE's ratio times
    the weight ratio, and exactly the weight ratio where 1 − a = b."""
    weights = [0.3, 2.5, 9.0, 40.0]
    wce = losses.get("weighted_ce", class_weights=weights)
    ce = losses.get("ce")
    kwargs = dict(class_index=3, class_shares=SHARES)
    w = surfaces.planes(wce, SHARES[3], RES, **kwargs)
    c = surfaces.planes(ce, SHARES[3], RES, **kwargs)
    w_other, w_class = w.weights
    assert w_class == 40.0
    a, b = clipped(w.a)[None, :], clipped(w.b)[:, None]
    interior = (slice(1, -1), slice(1, -1))  # at the clipped edges float32 holds 1e-6 to ~5 %
    shape = w.missed.shape
    np.testing.assert_allclose(w.missed[interior], np.broadcast_to(w_class * (1 - a), shape)[interior], rtol=1e-4)
    np.testing.assert_allclose(w.false_alarm[interior], np.broadcast_to(w_other * b, shape)[interior], rtol=1e-4)
    np.testing.assert_allclose(w.ratio[interior] / c.ratio[interior], w_class / w_other, rtol=1e-4)
    diagonal = np.array([w.ratio[RES - 1 - k, k] for k in range(1, RES - 1)])  # b = 1 − a
    np.testing.assert_allclose(diagonal, w_class / w_other, rtol=1e-4)


def test_focal_gradient_vanishes_faster_than_ce():
    """As p_t → 1 the focal gradient over CE's goes to 0 for γ > 0 (float64:
    |dFL/dz_t| = (1−p)^γ[(1−p) − γ p log p], CE's is 1 − p)."""
    p = np.array([0.5, 0.8, 0.9, 0.95, 0.99, 0.999])
    ce = surfaces.pixel_curve(losses.get("ce"), 0.3, p)
    np.testing.assert_allclose(ce.gradient, 1 - p, rtol=1e-4)
    for gamma in (0.5, 2.0, 5.0):
        focal = surfaces.pixel_curve(losses.get("focal", gamma=gamma, alpha=1.0), 0.3, p)
        expected = (1 - p) ** gamma * ((1 - p) - gamma * p * np.log(p))
        np.testing.assert_allclose(focal.gradient, expected, rtol=2e-4)
        ratio = focal.gradient / ce.gradient
        assert np.all(np.diff(ratio) < 0), gamma
        assert ratio[-1] < 0.05 * ratio[0] or gamma == 0.5
        assert ratio[-1] < ratio[0]
    gamma0 = surfaces.pixel_curve(losses.get("focal", gamma=0.0, alpha=1.0), 0.3, p)
    np.testing.assert_allclose(gamma0.gradient, ce.gradient, rtol=1e-5)


REFERENCE = {  # docs/losses.md: FL = −(1−p_t)^γ ln p_t for γ = 0, 0.5, 1, 2, 5
    0.1: (2.30259, 2.18442, 2.07233, 1.86509, 1.35965),
    0.5: (0.69315, 0.49013, 0.34657, 0.17329, 0.02166),
}


@pytest.mark.parametrize("index, gamma", list(enumerate((0.0, 0.5, 1.0, 2.0, 5.0))))
def test_focal_reference_values_lie_on_the_pixel_curve(index, gamma):
    curve = surfaces.pixel_curve(losses.get("focal", gamma=gamma, alpha=1.0), 0.0058, np.array([0.1, 0.5]), class_index=3)
    assert curve.loss[0] == pytest.approx(REFERENCE[0.1][index], abs=2e-5)
    assert curve.loss[1] == pytest.approx(REFERENCE[0.5][index], abs=2e-5)


def test_focal_is_100_times_lower_than_ce_at_09():
    p = np.array([0.1, 0.3, 0.5, 0.9])
    ce = surfaces.pixel_curve(losses.get("ce"), 0.1, p).loss
    fl = surfaces.pixel_curve(losses.get("focal", gamma=2.0, alpha=1.0), 0.1, p).loss
    assert ce[3] / fl[3] == pytest.approx(100.0, rel=1e-3)
    assert np.all(ce[:3] / fl[:3] <= 4.0 + 1e-6)


def test_region_pixel_curve_is_the_planes_anti_diagonal():
    loss = losses.get("focal_tversky")
    result = surfaces.planes(loss, 0.05, RES)
    p = result.a[1:-1]
    curve = surfaces.pixel_curve(loss, 0.05, p)
    diagonal = np.array([result.values[RES - 1 - k, k] for k in range(1, RES - 1)])
    np.testing.assert_allclose(curve.loss, diagonal, rtol=1e-5, atol=1e-7)
    missed = np.array([result.missed[RES - 1 - k, k] for k in range(1, RES - 1)])
    np.testing.assert_allclose(curve.gradient, missed, rtol=1e-5, atol=1e-7)


def test_gradient_times_pixels_does_not_depend_on_the_image_size():
    """Same share, twice the pixels: the ×P gradients agree (up to the smoothing, here 0)."""
    loss = losses.get("dice", smooth=0.0)
    small = surfaces.planes(loss, 0.25, RES, pixels=8)
    large = surfaces.planes(loss, 0.25, RES, pixels=64)
    assert small.layout.share == large.layout.share == 0.25
    interior = (slice(1, -1), slice(1, -1))
    np.testing.assert_allclose(small.missed[interior], large.missed[interior], rtol=1e-3)
    np.testing.assert_allclose(small.values, large.values, rtol=1e-4, atol=1e-6)


# -- behaviour of the losses on the plane ------------------------------------------------------


def test_tversky_alpha_beta_swap_changes_the_plane():
    fp_heavy = surfaces.planes(losses.get("tversky", alpha=0.7, beta=0.3), 0.05, RES)
    fn_heavy = surfaces.planes(losses.get("tversky", alpha=0.3, beta=0.7), 0.05, RES)
    assert not np.allclose(fp_heavy.values, fn_heavy.values, atol=1e-3)
    # β weighs false negatives: missing half the class (a = 0.5, b = 0) costs more with β = 0.7,
    # a false alarm everywhere at b = 0.2 (a = 1) more with α = 0.7.
    half, none = RES // 2, 0
    assert fn_heavy.values[none, half] > fp_heavy.values[none, half]
    alarm = round(0.2 * (RES - 1))
    assert fp_heavy.values[alarm, RES - 1] > fn_heavy.values[alarm, RES - 1]


EXTREMES = {
    "focal": [dict(gamma=5.0), dict(gamma=0.0, alpha=0.0)],
    "binary_focal": [dict(gamma=5.0, alpha=1.0), dict(gamma=0.0, alpha=0.0)],
    "dice": [dict(smooth=0.0), dict(smooth=1.0)],
    "iou": [dict(smooth=0.0)],
    "tversky": [dict(alpha=0.0, beta=1.0, smooth=0.0), dict(alpha=1.0, beta=0.0, smooth=0.0)],
    "focal_tversky": [dict(gamma=0.1, smooth=0.0), dict(gamma=3.0)],
    "sensitivity_specificity": [dict(r=0.0, smooth=0.0), dict(r=1.0)],
    "generalized_dice": [dict(smooth=0.0)],
    "ce_dice": [dict(lambda_ce=0.0, smooth=0.0)],
    "unified_focal": [dict(gamma=0.9, delta=1.0, smooth=0.0), dict(gamma=0.0, lambda_=0.0)],
}


@pytest.mark.parametrize("loss_id", LOSS_IDS)
def test_every_plane_is_finite_over_the_whole_square(loss_id):
    for params in [{}] + EXTREMES.get(loss_id, []):
        for weighted in (False, True):
            loss = make(loss_id, weighted, **params)
            for class_index in (0, 3):
                result = surfaces.planes(loss, SHARES[class_index], RES, class_index=class_index, class_shares=SHARES)
                for name in ("values", "missed", "false_alarm"):
                    array = getattr(result, name)
                    assert np.all(np.isfinite(array)), (loss_id, params, weighted, class_index, name)
                # Corners included.
                assert np.isfinite(result.values[[0, 0, -1, -1], [0, -1, 0, -1]]).all()
                assert np.all(result.values >= -1e-6), (loss_id, params)


def test_a_slider_move_changes_the_plane_without_retracing():
    loss = losses.get("focal_tversky", gamma=0.75)
    first = surfaces.planes(loss, 0.02, RES)
    evaluator = surfaces._evaluator(loss.loss_id, surfaces._flags(loss), False, first.layout, RES * RES)
    traces = evaluator.state["traced"].experimental_get_tracing_count()
    loss.set_params(gamma=2.0, beta=0.9)
    second = surfaces.planes(loss, 0.02, RES)
    assert evaluator.state["traced"].experimental_get_tracing_count() == traces == 1
    assert not np.allclose(first.values, second.values)
    fresh = surfaces.planes(losses.get("focal_tversky", gamma=2.0, beta=0.9), 0.02, RES)
    np.testing.assert_allclose(second.values, fresh.values, rtol=1e-6)


def test_log_spaced_b_axis():
    loss = losses.get("tversky")
    result = surfaces.planes(loss, SHARES[3], RES, class_index=3, b_scale="log")
    assert result.b[0] == pytest.approx(surfaces.B_LOG_MIN) and result.b[-1] == pytest.approx(1.0)
    assert np.all(np.diff(np.log(result.b)) > 0)
    np.testing.assert_allclose(result.a, np.linspace(0, 1, RES))
    for i, j in ((0, 20), (3, 17), (12, 5)):
        expected = concrete_loss(loss, result.layout, result.a[j], result.b[i], None)
        assert result.values[i, j] == pytest.approx(expected, rel=2e-4, abs=2e-5)
    with pytest.raises(ValueError, match="linear"):
        surfaces.planes(loss, 0.1, RES, b_scale="sqrt")


def test_figures_build_from_the_arrays():
    """Every figure of surface_plots builds from real surfaces (NaN-free or not) and puts the b
    axis on a log scale when b is log-spaced."""
    from explorer import surface_plots

    loss = losses.get("focal_tversky")
    for b_scale in ("linear", "log"):
        p = surfaces.planes(loss, 0.02, RES, b_scale=b_scale)
        path = np.array([[0.1, 0.3], [0.2, 0.05], [0.5, 0.01]])
        fig = surface_plots.loss_plane(p.a, p.b, p.values, "loss", path, [0, 20, 40], b_equal=0.02 / 0.98)
        assert fig.data[0].type == "contour" and len(fig.data) == 3
        assert (fig.layout.yaxis.type == "log") == (b_scale == "log")
        assert len(fig.layout.shapes) == 1
        fig = surface_plots.gradient_planes(p.a, p.b, p.missed, p.false_alarm, "g", path, zrange=(-3.0, 1.0))
        assert [t.type for t in fig.data].count("heatmap") == 2 and fig.data[0].zmin == -3.0
        fig = surface_plots.ratio_plane(p.a, p.b, p.ratio, "r", None)
        assert fig.data[0].zmid == 0
    curves = {"A": surfaces.pixel_curve(losses.get("ce"), 0.02), "B": surfaces.pixel_curve(loss, 0.02)}
    fig = surface_plots.pixel_curves(curves)
    assert len(fig.data) == 4 and fig.data[2].line.dash == "dash"
    values = np.full((5, 5), np.nan)
    values[:2] = np.arange(10).reshape(2, 5) + 1.0
    fig = surface_plots.landscape(np.linspace(-1, 1, 5), np.linspace(-1, 1, 5), values, "partial")
    assert fig.data[0].type == "contour"
    fig = surface_plots.pixel_maps(None, np.ones((4, 4)), "t", None, (-2.0, 1.0))
    assert len(fig.data) == 1



def test_a_ratio_plane_undefined_everywhere_says_so():
    """Weighted CE with every other class at weight 0: a false alarm gets no gradient, so the
    ratio is 0 ÷ 0 (NaN) on the whole plane. The figure says why instead of an empty square, and
    builds without numpy's all-NaN warnings."""
    import warnings

    from explorer import surface_plots

    wce = losses.get("weighted_ce", class_weights=[0.0, 0.0, 0.0, 5.0])
    p = surfaces.planes(wce, SHARES[3], RES, class_index=3, class_shares=SHARES)
    assert np.isnan(p.ratio).all() and (p.missed > 0).any()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig = surface_plots.ratio_plane(p.a, p.b, p.ratio, "r", None, balance=20.0)
    assert [t.type for t in fig.data] == ["heatmap"], "no contour line can be drawn on an undefined plane"
    assert "no gradient" in fig.layout.annotations[0].text
    defined = surface_plots.ratio_plane(p.a, p.b, surfaces.planes(losses.get("ce"), SHARES[3], RES, class_index=3, class_shares=SHARES).ratio, "r", None)
    assert not defined.layout.annotations


# -- the page ----------------------------------------------------------------------------------


def test_the_page_draws_the_surfaces_and_computes_the_landscapes():
    """app.py with streamlit's AppTest: the surfaces section (its tab opened) renders without an
    exception, the class defaults to the rarest, and the landscape button computes every run's grid
    (11×11 here) without touching the runs' weights."""
    from pathlib import Path

    from page_session import open_section, section
    from streamlit.testing.v1 import AppTest

    from explorer.ui import sections

    app = Path(__file__).resolve().parent.parent / "app.py"
    at = AppTest.from_file(str(app), default_timeout=300)
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    open_section(at, sections.SURFACES)
    runs = at.session_state["runs"]
    select = at.selectbox(key="surfaces_class")
    shares = [float(option.split("(")[-1].split(" %")[0]) for option in select.options]
    assert select.value == int(np.argmin(shares))
    # The pixel view, three plane figures and one map figure per run, in the surfaces' tab.
    assert len(section(at, sections.SURFACES).get("plotly_chart")) >= 1 + 4 * len(runs)
    before = {label: [w.copy() for w in run.model.get_weights()] for label, run in runs.items()}
    at.select_slider(key="landscape_steps").set_value(11).run()
    at.button(key="landscape_start").click().run()
    for _ in range(30):  # each script run computes a few rows, then reruns the fragment
        if "landscape_job" not in at.session_state:
            break
        at.run()
    assert not at.exception, [e.message for e in at.exception]
    results = at.session_state["landscapes"]
    assert set(results) == set(runs)
    for label, result in results.items():
        assert result["values"].shape == (11, 11) and np.all(np.isfinite(result["values"]))
        assert result["values"][5, 5] == pytest.approx(result["center"], rel=1e-6)
        for old, new in zip(before[label], runs[label].model.get_weights()):
            np.testing.assert_array_equal(old, new)


def test_heatmaps_of_large_images_keep_the_maximum_of_each_block():
    """A 1-pixel line in a 300×200 map survives the shrink to at most 128 cells a side."""
    values = np.zeros((300, 200, 2))
    values[151, 7:190, 1] = 0.9
    values[3, 5, 0] = np.nan
    small = plots.shrink(values, side=128)
    assert small.shape == (100, 67, 2)  # blocks of 3×3, the last column padded
    assert np.all(small[50, 3:63, 1] == 0.9) and np.all(np.delete(small[..., 1], 50, axis=0) == 0)
    assert small[1, 1, 0] == 0 and not np.isnan(small).any()  # a NaN beside numbers is skipped
    fitting = np.ones((64, 64, 3))
    assert plots.shrink(fitting) is fitting
