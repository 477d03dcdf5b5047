"""Where a full-integer variant's accuracy goes, measured once at build (explorer.measure.quant_error).

    >>> record = blame.quant_error(model, spec, data, tflite, num_classes)   # None for a float variant

Per op: TensorFlow's QuantizationDebugger error of its int8 output against the float model's. Where int8 loses at
least half a point on the validation subset, and significantly (McNemar's exact test against the float model's
predictions on the same images), each candidate layer is also kept alone in float (the converter's
own denylist, as per-layer precision does) and the model evaluated again: the points it recovers.
"""

from __future__ import annotations

import logging

import numpy as np

from explorer.data.datasets import Dataset
from explorer.measure import gate, measure, quant_error
from explorer.record import QuantError
from explorer.spec import VariantSpec
from explorer.uncertainty import mcnemar

log = logging.getLogger(__name__)


def accuracy_of(tflite: bytes, x: np.ndarray, y: np.ndarray, classes: int) -> float:
    """A converted model's accuracy on these images (the machine's CPU gate held shared: never while timing)."""
    with gate.machine().shared():
        return measure.evaluate(tflite, x, y, classes).accuracy


def quant_error_of(model, spec: VariantSpec, data: Dataset, tflite: bytes, classes: int,
                   keep_float: tuple[str, ...] = ()) -> QuantError | None:
    """The per-op error of a full-integer variant (int8, qat-int8, per-layer precision: the error each op has in
    full int8), None for a float one or when the debugger cannot take the model (a warning says why; the build
    goes on: the error is a diagnosis). keep_float: the layers the variant keeps in float already."""
    from explorer.models import quantize

    if spec.quant not in quantize.INT8_MODES or model is None:
        return None
    x, y = data.x_val[:quant_error.IMAGES], data.y_val[:quant_error.IMAGES]
    calibration = data.x_train[:quantize.CALIBRATION_IMAGES]
    try:
        with gate.machine().shared():
            dump = quantize.debug_dump(model, spec.quant, calibration, x[:quant_error.DEBUG_IMAGES])
            float_pred = model.predict(x, batch_size=256, verbose=0).argmax(1)
            int8_pred = measure.evaluate(tflite, x, y, classes).predictions
        owners = quantize.op_owners(tflite, [layer.name for layer in model.layers], quantize.output_layer(model))
    except Exception as exc:  # noqa: BLE001 - a diagnosis that cannot be made is said, not fatal to the build
        log.warning("per-layer quantization error not measured for %s: %s: %s", spec.label(), type(exc).__name__,
                    str(exc).split("\n")[0][:200])
        return None
    record = QuantError(len(x), float((float_pred == y).mean()), float((int8_pred == y).mean()),
                        quant_error.from_dump(dump, owners, quantize.op_order(tflite)), mcnemar(y, float_pred, int8_pred).p)
    if not quant_error.worth_blaming(record):
        return record
    gains = {}
    with gate.machine().shared():
        mixer = quantize.FloatMixer(model, spec.quant, calibration)
    for layer in quant_error.candidates(record.layers, first=quantize.output_layer(model)):
        if layer in keep_float:
            continue
        try:
            with gate.machine().shared():
                mixed = mixer.convert((*keep_float, layer))
        except ValueError:  # no op of its own to keep in float
            continue
        gains[layer] = (accuracy_of(mixed, x, y, classes) - record.int8_accuracy) * 100
    return quant_error.with_gains(record, gains)
