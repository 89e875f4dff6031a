"""The private TensorFlow and Keras calls of explorer/tf_internals.py still exist and still do what
the project relies on. Each failure names the call: an upgrade that changes one must be noticed."""

from __future__ import annotations

import inspect
from unittest import mock

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras.src.backend.tensorflow.optimizer import TFOptimizer
from tensorflow.python.eager import context as eager_context

from explorer import tf_internals


def test_keras_adam_still_updates_through_backend_update_step_with_this_signature():
    call = "keras.optimizers.Adam._backend_update_step(self, grads, trainable_variables, learning_rate)"
    assert hasattr(TFOptimizer, "_backend_update_step"), f"{call} is gone: SingleDeviceAdam overrides nothing"
    parameters = list(inspect.signature(TFOptimizer._backend_update_step).parameters)
    assert parameters == ["self", "grads", "trainable_variables", "learning_rate"], f"{call} changed: {parameters}"
    variable = keras.Variable(np.ones(3, np.float32))
    optimizer = tf_internals.SingleDeviceAdam(learning_rate=0.1)
    optimizer.build([variable])
    with mock.patch.object(tf_internals.SingleDeviceAdam, "_backend_update_step", autospec=True) as override:
        optimizer.apply_gradients([(tf.ones(3), variable)])
    assert override.called, f"{call} is no longer called by apply_gradients: SingleDeviceAdam's override is dead code"


def test_single_device_adam_updates_exactly_as_keras_adam():
    """Several steps under tf.function, as a run trains, of several variables (the step-dependent
    scalars are computed once for all of them): same variables, same optimizer state, bit for bit."""
    rng = np.random.default_rng(0)
    shapes = [(4, 3), (3, 3, 2, 5), (7,)]
    steps = [[rng.normal(size=shape).astype(np.float32) for shape in shapes] for _ in range(5)]
    results = []
    for optimizer_class in (keras.optimizers.Adam, tf_internals.SingleDeviceAdam):
        variables = [keras.Variable(np.ones(shape, np.float32)) for shape in shapes]
        optimizer = optimizer_class(learning_rate=0.01)
        optimizer.build(variables)
        step = make_step(optimizer, variables)
        for grads in steps:
            step([tf.constant(g) for g in grads])
        results.append(([v.numpy() for v in variables], [v.numpy() for v in optimizer.variables]))
    (keras_values, keras_state), (our_values, our_state) = results
    assert not np.array_equal(our_values[0], np.ones(shapes[0])), "nothing was trained"
    for ours, theirs in zip(our_values + our_state, keras_values + keras_state, strict=True):
        np.testing.assert_array_equal(ours, theirs)


def test_single_device_adam_refuses_amsgrad_which_it_does_not_implement():
    variable = keras.Variable(np.ones(3, np.float32))
    optimizer = tf_internals.SingleDeviceAdam(learning_rate=0.1, amsgrad=True)
    optimizer.build([variable])
    with pytest.raises(ValueError, match="amsgrad"):
        optimizer.apply_gradients([(tf.ones(3), variable)])


def make_step(optimizer, variables):
    @tf.function
    def step(grads):
        optimizer.apply_gradients(zip(grads, variables))

    return step


def test_clear_kernel_cache_still_exists_and_eager_ops_run_after_it():
    call = "tensorflow.python.eager.context.context().clear_kernel_cache()"
    assert callable(getattr(eager_context.context(), "clear_kernel_cache", None)), f"{call} is gone"
    f = tf.function(lambda x: x * 2.0)
    assert float(f(tf.constant(1.0))) == 2.0
    tf_internals.clear_kernel_cache()
    assert float(f(tf.constant(3.0))) == 6.0, f"a traced function does not run after {call}"


def test_clearing_the_kernel_cache_while_another_run_trains_changes_nothing_of_its_training():
    """One session trains while another builds runs after runs were released (each build clears
    the process-wide cache): no exception, and the training run trains exactly what it trains alone."""
    import gc
    import threading

    from explorer.training import Run
    from tests.test_training import small_config, tiny_dataset

    data, config, steps = tiny_dataset(), small_config(), 30
    alone = Run(config, data)
    for _ in range(steps):
        alone.advance(1, evaluate_every=10)

    clears_while_training, training_done, first_clear = [], threading.Event(), threading.Event()
    real_clear = tf_internals.clear_kernel_cache

    def counting_clear():
        real_clear()
        clears_while_training.append(not training_done.is_set())
        first_clear.set()

    errors, trained = [], []

    def train():
        try:
            run = Run(config, data)
            run.advance(1, evaluate_every=10)
            assert first_clear.wait(timeout=600), "the other thread never cleared the cache"
            for _ in range(steps - 1):
                run.advance(1, evaluate_every=10)
            trained.append(run)
        except Exception as error:  # reported by the main thread
            errors.append(error)
        finally:
            training_done.set()

    def build_after_releases():
        try:
            while not training_done.is_set():
                released = Run(config, data)
                del released
                gc.collect()  # the released run's finalizer marks the cache for clearing
                Run(config, data).advance(1)  # built after a release: clears the cache
        except Exception as error:
            errors.append(error)

    with mock.patch.object(tf_internals, "clear_kernel_cache", counting_clear):
        threads = [threading.Thread(target=train), threading.Thread(target=build_after_releases)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert not errors, errors
    assert any(clears_while_training), "no clear happened while the other run was training"
    (run,) = trained
    assert run.state.loss_values == alone.state.loss_values
    for ours, theirs in zip(run.model.get_weights(), alone.model.get_weights(), strict=True):
        np.testing.assert_array_equal(ours, theirs)
    assert [e.step for e in run.state.evaluations] == [0, 10, 20, 30]
    np.testing.assert_array_equal(run.state.latest.probabilities, alone.state.latest.probabilities)
