"""The only uses of private TensorFlow and Keras API, each because no public call does the job.
tests/test_tf_internals.py fails, naming the call, if an upgrade removes or changes one of them.

- `keras.optimizers.Adam._backend_update_step` (overridden): Keras's TensorFlow backend routes
  every update through tf.distribute's all-reduce, which no single-device run needs. Tracing that
  all-reduce registers a gradient function in a global registry that is never cleared, and it
  keeps the whole traced train step alive (about 13 MB per closed run). No public option turns
  it off. The override also computes Adam's step-dependent scalars once per step rather than once
  per variable (Keras's `update_step` does), which the same test holds to Keras's bits.
- `tensorflow.python.eager.context.context().clear_kernel_cache()`: TensorFlow's eager kernel
  cache keeps an entry for every traced function that ever ran, also after the function is gone
  (about 2 MiB for each released run, without end). The public `keras.backend.clear_session()`
  clears it too, but it also resets Keras's global state for every thread (name scopes, the
  symbolic and stateless scopes), which would break another session building or tracing a model
  at that moment.
"""

from __future__ import annotations

import keras
from keras import ops
from tensorflow.python.eager import context as eager_context


class SingleDeviceAdam(keras.optimizers.Adam):
    """Keras's Adam without tf.distribute's all-reduce, and with the scalars that depend only on the
    step (the bias corrections of `keras.optimizers.Adam.update_step`) computed once per step and
    dtype rather than once per variable: the same ops on the same values, so the same bits, and for
    the default U-Net's 58 variables about 1,000 fewer ops for TensorFlow to trace and optimize
    (a fifth of the train step: seconds on a 2-core CPU, each time a run's loss changes)."""

    def _backend_update_step(self, grads, trainable_variables, learning_rate):
        if self.amsgrad:
            raise ValueError("SingleDeviceAdam does not implement amsgrad")
        step_sizes = {}
        for gradient, variable in zip(grads, trainable_variables):
            dtype = variable.dtype
            if dtype not in step_sizes:
                step_sizes[dtype] = self._step_size(learning_rate, dtype)
            # The rest of Keras's update_step, op for op.
            gradient = ops.cast(gradient, dtype)
            index = self._get_variable_index(variable)
            m, v = self._momentums[index], self._velocities[index]
            self.assign_add(m, ops.multiply(ops.subtract(gradient, m), 1 - self.beta_1))
            self.assign_add(v, ops.multiply(ops.subtract(ops.square(gradient), v), 1 - self.beta_2))
            self.assign_sub(variable, ops.divide(ops.multiply(m, step_sizes[dtype]), ops.add(ops.sqrt(v), self.epsilon)))

    def _step_size(self, learning_rate, dtype):
        """Keras's `alpha`: the learning rate with both bias corrections of this step."""
        lr = ops.cast(learning_rate, dtype)
        local_step = ops.cast(self.iterations + 1, dtype)
        beta_1_power = ops.power(ops.cast(self.beta_1, dtype), local_step)
        beta_2_power = ops.power(ops.cast(self.beta_2, dtype), local_step)
        return lr * ops.sqrt(1 - beta_2_power) / (1 - beta_1_power)


def clear_kernel_cache() -> None:
    """Drop TensorFlow's cached eager kernels (process-wide). Kernels in use by a running step
    are reference-counted and stay valid; live runs make theirs again on their next call."""
    eager_context.context().clear_kernel_cache()
