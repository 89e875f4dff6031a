"""The only uses of private TensorFlow and Keras API, each because no public call does the job.
tests/test_tf_internals.py fails, naming the call, if an upgrade removes or changes one of them.

- `keras.optimizers.Adam._backend_update_step` (overridden): Keras's TensorFlow backend routes
  every update through tf.distribute's all-reduce, which no single-device run needs. Tracing that
  all-reduce registers a gradient function in a global registry that is never cleared, and it
  keeps the whole traced train step alive (about 13 MB per closed run). No public option turns
  it off.
- `tensorflow.python.eager.context.context().clear_kernel_cache()`: TensorFlow's eager kernel
  cache keeps an entry for every traced function that ever ran, also after the function is gone
  (about 2 MiB for each released run, without end). The public `keras.backend.clear_session()`
  clears it too, but it also resets Keras's global state for every thread (name scopes, the
  symbolic and stateless scopes), which would break another session building or tracing a model
  at that moment.
"""

from __future__ import annotations

import keras
from tensorflow.python.eager import context as eager_context


class SingleDeviceAdam(keras.optimizers.Adam):
    """Keras's Adam without tf.distribute's all-reduce. The update itself is Keras's own: the
    backend-neutral per-variable loop of BaseOptimizer."""

    def _backend_update_step(self, grads, trainable_variables, learning_rate):
        for grad, variable in zip(grads, trainable_variables):
            self.update_step(grad, variable, learning_rate)


def clear_kernel_cache() -> None:
    """Drop TensorFlow's cached eager kernels (process-wide). Kernels in use by a running step
    are reference-counted and stay valid; live runs make theirs again on their next call."""
    eager_context.context().clear_kernel_cache()
