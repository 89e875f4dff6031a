"""The comparison's runs as Ray tasks (explorer.cluster): the same outcomes as compare's own worker
pool, and a run that raises is a failed run while the others finish. On one local Ray instance,
started here once for the module; run_on_ray uses it and leaves it running."""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import pytest

from explorer import cluster, compare
from explorer.compare import Variant
from test_training import tiny_dataset


@pytest.fixture(scope="module")
def ray_instance():
    try:
        import ray
    except ImportError as error:  # not a skip: CI installs Ray (tests/run_all.sh), so this must run
        pytest.fail(f"Ray is not installed ({error}): pip install -r requirements-ray.txt")
    ray.init(address="local", num_cpus=2, include_dashboard=False, object_store_memory=128 * 1024**2, log_to_driver=False, logging_level=logging.WARNING)
    try:
        yield ray
    finally:
        ray.shutdown()


def test_ray_gives_the_outcomes_of_the_worker_pool_in_task_order(ray_instance):
    dataset = tiny_dataset()
    tasks = [(Variant("dice", "none", "group"), seed, 2, 3e-3) for seed in (0, 1)]
    lines: list[str] = []
    on_ray = cluster.run_on_ray(tasks, dataset, progress=lines.append)
    assert ray_instance.is_initialized(), "an instance it did not start is left running"
    pooled = compare.run_all(tasks, dataset, workers=1, progress=lambda _: None)
    assert [(o.variant, o.seed) for o in on_ray] == [t[:2] for t in tasks]
    for a, b in zip(on_ray, pooled):
        assert a.failed is None
        assert dataclasses.replace(a, seconds=0) == dataclasses.replace(b, seconds=0)
        assert a.prediction is not None and a.prediction.dtype == b.prediction.dtype and np.array_equal(a.prediction, b.prediction)
    assert on_ray[0].mean_iou != on_ray[1].mean_iou, "different seeds, different runs"
    assert len(lines) == 2 and " 2/2 " in lines[-1]


def test_a_run_that_raises_is_a_failed_run_and_the_others_finish(ray_instance):
    dataset = tiny_dataset()
    broken = Variant("dice", "none", "no_such_normalization")  # build_unet refuses it
    with pytest.raises(ValueError) as raised:
        compare.train_one(broken, 0, 2, 3e-3, dataset)
    tasks = [(broken, 0, 2, 3e-3), (Variant("dice", "none", "group"), 0, 2, 3e-3)]
    lines: list[str] = []
    failed, finished = cluster.run_on_ray(tasks, dataset, progress=lines.append)
    assert (failed.variant, failed.seed, failed.step) == (broken, 0, 0)
    assert failed.failed == f"ValueError: {raised.value}", "the reason compare.run_all gives"
    assert failed.mean_iou is None and failed.prediction is None
    assert finished.failed is None and finished.step == 2 and 0 <= finished.mean_iou <= 1 and finished.prediction is not None
    assert len(lines) == 2 and sum("FAILED" in line for line in lines) == 1
