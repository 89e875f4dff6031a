"""The device kinds a benchmark measures: the CPU always, the GPU too when TensorFlow sees one, so
their figures print side by side. A part runs each kind's work under `tf.device(name)`."""

from __future__ import annotations

import os

import tensorflow as tf

from explorer.training import describe_device


def device_kinds() -> dict[str, str]:
    """{tf.device name: description}; says so when there is no GPU to measure."""
    kinds = {"/CPU:0": f"CPU ({os.cpu_count()} cores)"}
    if tf.config.list_physical_devices("GPU"):
        kinds["/GPU:0"] = describe_device()
    else:
        print("no GPU visible to TensorFlow: GPU figures skipped")
    return kinds
