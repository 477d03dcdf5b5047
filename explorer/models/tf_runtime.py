"""The one place TensorFlow is imported.

tfmot does not support Keras 3, so TF_USE_LEGACY_KERAS=1 must be set before TensorFlow is first
imported; every module that needs TensorFlow imports it from here. Results-only code (the cache,
the results table, Pareto, figures) never imports this module, so it starts without TensorFlow.
"""

import os

os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # hide C++ info logs (CUDA probing on CPU hosts)

import tensorflow as tf  # noqa: E402
import tensorflow_model_optimization as tfmot  # noqa: E402
import tf_keras as keras  # noqa: E402
from tf_keras.src.engine import data_adapter  # noqa: E402  (how fit() turns arrays into a tf.data pipeline)

tf.get_logger().setLevel("ERROR")

__all__ = ["tf", "keras", "tfmot", "data_adapter"]
