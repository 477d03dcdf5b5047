"""Quantization: quantization-aware training with tfmot and TFLite conversion for every mode.

Modes (explorer.spec.QUANT_MODES):
  fp32     - plain float conversion, the baseline;
  dynamic  - int8 weights, float activations (no calibration data);
  float16  - float16 weights, computed in float32 on CPU;
  int8     - full-integer post-training quantization, calibrated on a representative dataset,
             with int8 input and output tensors;
  qat-int8 - fine-tuned with fake-quantization first (keeping pruning/clustering), then full int8.
"""

from __future__ import annotations

import warnings

import numpy as np

from explorer.data.datasets import Dataset
from explorer.spec import VariantSpec
from explorer.models.tf_runtime import keras, tf, tfmot
from explorer.models.train import StageProgress, fine_tune

CALIBRATION_IMAGES = 256


def qat(model: keras.Model, data: Dataset, spec: VariantSpec, on_progress: StageProgress) -> keras.Model:
    """Quantization-aware fine-tune of a trained model, preserving its sparsity and clusters."""
    qk = tfmot.quantization.keras
    combine = tfmot.experimental.combine
    annotated = qk.quantize_annotate_model(model)
    if spec.clusters:
        scheme = combine.Default8BitClusterPreserveQuantizeScheme(preserve_sparsity=spec.sparsity > 0)
        q_model = qk.quantize_apply(annotated, scheme)
    elif spec.sparsity:
        q_model = qk.quantize_apply(annotated, combine.Default8BitPrunePreserveQuantizeScheme())
    else:
        q_model = qk.quantize_apply(annotated)  # the default 8-bit scheme
    fine_tune(q_model, data, spec, on_progress, "Quantization-aware training")
    return q_model


INT8_MODES = ("int8", "qat-int8")


def without_softmax(model: keras.Model) -> keras.Model:
    """The same layers ending at the logits: their argmax is the predicted class, and XNNPACK has no int8
    softmax, so an int8 softmax would leave the graph's last op on LiteRT's built-in kernels."""
    if not model.layers[-1].name.endswith("softmax"):
        raise ValueError(f"the model's last layer is {model.layers[-1].name!r}, not its softmax")
    # Re-applied to a fresh input: a model stripped of pruning or clustering is a clone whose layers'
    # recorded outputs belong to another graph, so model.layers[-2].output cannot be cut out of it.
    x = inputs = keras.Input(shape=model.input_shape[1:], name="image")
    for layer in model.layers[:-1]:
        if not isinstance(layer, keras.layers.InputLayer):  # a functional model (QAT's) lists its input
            x = layer(x)
    return keras.Model(inputs, x, name=model.name)


def to_tflite(model: keras.Model, mode: str, calibration: np.ndarray, softmax: bool | None = None) -> bytes:
    """Convert a Keras model to a TFLite flatbuffer in the given mode (calibration: sample images).

    Full-integer models end at their logits unless softmax=True (see without_softmax)."""
    keep_softmax = mode not in INT8_MODES if softmax is None else softmax
    if not keep_softmax:
        model = without_softmax(model)
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if mode != "fp32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if mode == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if mode in INT8_MODES:
        # QAT models carry their learned ranges; the converter still asks for samples to check
        # the int8 input/output tensors, so both modes get the same calibration images.
        sample = calibration[:CALIBRATION_IMAGES].astype(np.float32)
        converter.representative_dataset = lambda: ([img[None]] for img in sample)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    with warnings.catch_warnings():
        # The converter asks for mean/std of quantized inputs only to warn: ours come from the calibration
        # images, so the warning would reach users for a model that is right.
        warnings.filterwarnings("ignore", message="Statistics for quantized inputs were expected")
        return converter.convert()
