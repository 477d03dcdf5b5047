"""The one place TensorFlow is imported.

tfmot does not support Keras 3, so TF_USE_LEGACY_KERAS=1 must be set before TensorFlow is first
imported; every module that needs TensorFlow imports it from here. Results-only code (the cache,
the results table, Pareto, figures) never imports this module, so it starts without TensorFlow.
"""

import os

os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # hide C++ info logs (CUDA probing on CPU hosts)

import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402
from tf_keras.src.engine import data_adapter  # noqa: E402  (how fit() turns arrays into a tf.data pipeline)

tf.get_logger().setLevel("ERROR")

__all__ = ["tf", "keras", "tfmot", "data_adapter"]


def __getattr__(name: str):
    """tfmot on first use (`tf_runtime.tfmot`): its import costs about 1.5 s more than TensorFlow's, and only
    pruning, clustering and quantization-aware training need it, not a plain build or conversion."""
    if name == "tfmot":
        import tensorflow_model_optimization

        return tensorflow_model_optimization
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
