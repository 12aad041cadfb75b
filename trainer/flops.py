"""Count a model's floating-point operations per image, from its graph (not by timing it)."""

from __future__ import annotations

import keras
import tensorflow as tf
from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2


def count_flops(model: keras.Model, input_shape: tuple[int, ...] | list[tuple[int, ...]]) -> int:
    """FLOPs of one inference on a batch of one, as TensorFlow's profiler counts them (a multiply-add is 2).

    ``input_shape``: one shape without the batch axis, or a list of them for a model of several inputs.
    """
    shapes = input_shape if isinstance(input_shape, list) else [input_shape]
    specs = [tf.TensorSpec((1, *shape), tf.float32) for shape in shapes]

    @tf.autograph.experimental.do_not_convert
    def forward(*inputs):
        return model(list(inputs) if len(inputs) > 1 else inputs[0], training=False)

    graph = convert_variables_to_constants_v2(tf.function(forward).get_concrete_function(*specs)).graph
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    return tf.compat.v1.profiler.profile(graph=graph, options=options).total_float_ops
