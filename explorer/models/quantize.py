"""Quantization: quantization-aware training with tfmot and TFLite conversion for every mode.

Modes (explorer.spec.QUANT_MODES):
  fp32     - plain float conversion, the baseline;
  dynamic  - int8 weights, float activations (no calibration data);
  float16  - float16 weights, computed in float32 on CPU;
  int8     - full-integer post-training quantization, calibrated on a representative dataset,
             with int8 input and output tensors;
  qat-int8 - fine-tuned with fake-quantization first (keeping pruning/clustering), then full int8;
  int16x8  - int8 weights, int16 activations (LiteRT's reference kernels, TFLite Micro's int16 ones), calibrated
             as int8 is, with float input and output tensors.
"""

from __future__ import annotations

import contextlib
import io
import warnings

import numpy as np

from explorer.data.datasets import Dataset
from explorer.spec import VariantSpec
from explorer.models.tf_runtime import keras, tf
from explorer.models import lever_scope, tf_runtime  # tf_runtime.tfmot: imported on first use
from explorer.models.train import StageProgress, fine_tune

CALIBRATION_IMAGES = 256


def qat(model: keras.Model, data: Dataset, spec: VariantSpec, on_progress: StageProgress) -> keras.Model:
    """Quantization-aware fine-tune of a trained model, preserving its sparsity and clusters."""
    qk = tf_runtime.tfmot.quantization.keras
    combine = tf_runtime.tfmot.experimental.combine
    if spec.clusters:
        scheme = combine.Default8BitClusterPreserveQuantizeScheme(preserve_sparsity=spec.sparsity > 0)
    elif spec.sparsity:
        scheme = combine.Default8BitPrunePreserveQuantizeScheme()
    else:
        scheme = qk.default_8bit.Default8BitQuantizeScheme()
    scheme = lever_scope.careful(scheme)
    marked = lever_scope.annotated(model, scheme.get_quantize_registry(), qk.quantize_annotate_layer)
    q_model = qk.quantize_apply(marked, scheme)
    fine_tune(q_model, data, spec, on_progress, "Quantization-aware training")
    return q_model


INT8_MODES = ("int8", "qat-int8")


def ends_in_softmax(model: keras.Model) -> bool:
    """Whether the model's last layer is a softmax of its own: the family's and keras: architectures' "softmax"
    (QAT's "quant_softmax"), or an imported network's Softmax or Activation("softmax") layer, whatever its name."""
    last = model.layers[-1]
    inner = getattr(last, "layer", last)  # QAT wraps each layer
    return (last.name.endswith("softmax") or isinstance(inner, keras.layers.Softmax)
            or (isinstance(inner, keras.layers.Activation) and getattr(inner.activation, "__name__", "") == "softmax"))


def _inbound(layer):
    """The one layer a layer is called on (None for several or none)."""
    found = layer._inbound_nodes[-1].inbound_layers if layer._inbound_nodes else []  # noqa: SLF001
    found = found if isinstance(found, (list, tuple)) else [found]
    return found[0] if len(found) == 1 else None


def output_layer(model: keras.Model) -> str:
    """The layer that computes the logits a full-integer conversion ends at: back from the last layer (or the
    one its softmax reads, without_softmax) over layers with no weights (a Flatten, a linear Activation), to the
    first with weights. Its int8 output quantizes the logits, and the ops after it keep that quantization: keeping
    the logits in float means keeping them all (op_owners gives the model's last op to it)."""
    layer = model.layers[-1]
    if ends_in_softmax(model):
        layer = _inbound(layer) or layer
    while not layer.weights and _inbound(layer) is not None and not isinstance(_inbound(layer), keras.layers.InputLayer):
        layer = _inbound(layer)
    return layer.name


def without_softmax(model: keras.Model) -> keras.Model:
    """The same layers ending at the logits: their argmax is the predicted class. XNNPACK has no int8 softmax
    (it would leave the graph's last op on LiteRT's built-in kernels), and an int8 softmax's 256 levels tie
    close classes: on a MobileNetV3Small it cost 1.5 points of the 1.6 full int8 lost."""
    if not ends_in_softmax(model):
        raise ValueError(f"the model's last layer is {model.layers[-1].name!r}, not its softmax")
    chain = isinstance(model, keras.Sequential) or all(
        not isinstance(layer.input, (list, tuple)) for layer in model.layers
        if not isinstance(layer, keras.layers.InputLayer))  # a merge (Add, Concatenate) takes several inputs
    if not chain:  # a graph with branches (an imported residual network): cut it at the softmax's input, taken
        # from this graph's own node (a stripped clone's layers also know the graph they were first called in)
        layer, node_index, _ = model.outputs[0]._keras_history
        return keras.Model(model.inputs, layer._inbound_nodes[node_index].input_tensors, name=model.name)
    # Re-applied to a fresh input: a model stripped of pruning or clustering is a clone whose layers'
    # recorded outputs belong to another graph, so model.layers[-2].output cannot be cut out of it.
    x = inputs = keras.Input(shape=model.input_shape[1:], name="image")
    for layer in model.layers[:-1]:
        if not isinstance(layer, keras.layers.InputLayer):  # a functional model (QAT's) lists its input
            x = layer(x)
    return keras.Model(inputs, x, name=model.name)


def converter_for(model: keras.Model, mode: str, calibration: np.ndarray, softmax: bool | None = None):
    """The TFLite converter of a Keras model in a mode, set up as every conversion here is (calibration: sample
    images). Full-integer models end at their logits unless softmax=True (see without_softmax)."""
    keep_softmax = mode not in INT8_MODES if softmax is None else softmax
    if not keep_softmax and ends_in_softmax(model):  # a Dense layer's softmax activation is kept
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
    if mode == "int16x8":
        sample = calibration[:CALIBRATION_IMAGES].astype(np.float32)
        converter.representative_dataset = lambda: ([img[None]] for img in sample)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
    return converter


@contextlib.contextmanager
def _quiet():
    with warnings.catch_warnings():
        # The converter asks for mean/std of quantized inputs only to warn: ours come from the calibration
        # images, so the warning would reach users for a model that is right.
        warnings.filterwarnings("ignore", message="Statistics for quantized inputs were expected")
        yield


def to_tflite(model: keras.Model, mode: str, calibration: np.ndarray, softmax: bool | None = None,
              keep_float: tuple[str, ...] = ()) -> bytes:
    """Convert a Keras model to a TFLite flatbuffer in the given mode (converter_for). keep_float names layers a
    full-integer model keeps in float (per-layer precision, explorer.measure.precision); such a model takes and
    gives float tensors."""
    if keep_float and mode in INT8_MODES:
        return FloatMixer(model, mode, calibration, softmax).convert(keep_float)
    with _quiet():
        return converter_for(model, mode, calibration, softmax).convert()


class FloatMixer:
    """Full-integer conversions of one model with different layers kept in float, calibrated once. Each mix is one
    quantization pass of the calibrated model with those layers' ops denylisted, as the converter's
    QuantizationDebugger makes its non-debug model, without calibrating and converting again for every mix (the
    layers tried one by one, and the bisection of a precision bound, convert one model many times)."""

    def __init__(self, model: keras.Model, mode: str, calibration: np.ndarray, softmax: bool | None = None):
        self.converter = converter_for(model, mode, calibration, softmax)
        self.output = output_layer(model)
        with _quiet():
            self.full = self.converter.convert()
            self.converter.experimental_mlir_quantizer = True  # the debugger's calibration options
            self.converter._experimental_calibrate_only = True  # noqa: SLF001
            self.calibrated = self.converter.convert()

    def convert(self, layers: tuple[str, ...]) -> bytes:
        """The model with these layers' ops kept in float (named by their output tensors, op_owners; it then takes
        and gives float tensors); the full-integer one for none. ValueError for a layer with no op of its own, or
        for every op in float (that is the fp32 variant)."""
        from tensorflow.lite.python import convert

        if not layers:
            return self.full
        owners = op_owners(self.full, list(layers), self.output)
        deny = [op for op, layer in owners.items() if layer]
        missing = [layer for layer in layers if layer not in owners.values()]
        if missing:
            raise ValueError(f"precision: no layer named {', '.join(missing)} in this model")
        if len(deny) == len(owners):
            raise ValueError("precision: every layer in float is the fp32 variant; ask for quantization fp32 instead")
        disable_per_channel = self.converter._experimental_disable_per_channel  # noqa: SLF001
        with _quiet():
            return convert.mlir_quantize(self.calibrated, disable_per_channel=disable_per_channel,
                                         fully_quantize=False, denylisted_nodes=deny)


def op_owners(tflite: bytes, layers: list[str], output: str | None = None) -> dict[str, str]:
    """Each op of a converted model (by its output tensor's name) -> the Keras layer it computes, "" for none. An
    op is a layer's when a tensor it writes or its weights are named after the layer (.../conv1/...). The model's
    last op writes the model's output (StatefulPartitionedCall:0): the logits are found by their weights, and a
    last op with none (a Flatten after a 1x1 convolution's logits) is the output layer's (output, if in layers)."""
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_content=tflite)
    names = {d["index"]: d["name"] for d in interp.get_tensor_details()}
    ops = interp._get_ops_details()  # noqa: SLF001
    owned = {names[o["outputs"][0]]: " ".join(names[i] for i in (*o["outputs"], *o["inputs"][1:]) if i >= 0)
             for o in ops}  # op (its output's name) -> what it writes and weighs
    by_length = sorted(layers, key=len, reverse=True)  # backbone/conv1 before conv1
    found = {op: next((layer for layer in by_length if f"/{layer}/" in mine), "") for op, mine in owned.items()}
    final = {names[d["index"]] for d in interp.get_output_details()}
    for op in final & found.keys():
        if not found[op] and output in layers:
            found[op] = output
    return found


def op_order(tflite: bytes) -> dict[str, int]:
    """Each op's output tensor name -> the op's index (the order the op profile and the memory plan use)."""
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_content=tflite)
    names = {d["index"]: d["name"] for d in interp.get_tensor_details()}
    return {names[o["outputs"][0]]: i for i, o in enumerate(interp._get_ops_details())}  # noqa: SLF001


def debug_dump(model: keras.Model, mode: str, calibration: np.ndarray, images: np.ndarray) -> str:
    """TensorFlow's QuantizationDebugger's per-op statistics of the full-integer conversion (CSV: op_name,
    tensor_name, mean_squared_error, scale, ...), its int8 outputs compared with float ones on these images."""
    debug = tf.lite.experimental.QuantizationDebugger(
        converter=converter_for(model, mode, calibration),
        debug_dataset=lambda: ([img[None]] for img in images.astype(np.float32)))
    with _quiet():
        debug.run()
    out = io.StringIO()
    debug.layer_statistics_dump(out)
    return out.getvalue()

