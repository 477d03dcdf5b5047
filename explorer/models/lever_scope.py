"""Which layers a tfmot lever wraps: those its registry supports; the rest of a network is left as it is.

tfmot wraps a whole model or refuses it: one layer it does not know (Rescaling, Normalization, an activation it
has no config for) stops pruning, clustering and quantization-aware training of every other layer
(tensorflow/model-optimization #647, #1051). Wrapping layer by layer, as tfmot's guides do for a chosen few
(`clone_model(model, clone_function=...)`), lets the levers reach every layer they can: a layer left out of
QAT is quantized by the converter from calibration, as in post-training int8; a layer left out of pruning or
clustering keeps its weights. Layers without weights are never wrapped.
"""

from __future__ import annotations

from typing import Callable

from explorer.models.tf_runtime import keras


def wrapped(model: keras.Model, wrap: Callable) -> keras.Model:
    """A clone of the model with `wrap(layer)` in place of each layer with weights that tfmot wraps (its own
    answer: wrapping a layer it does not support raises ValueError, and that layer is left as it is)."""
    def clone(layer):
        if not layer.weights or isinstance(layer, keras.layers.InputLayer):
            return layer
        try:
            return wrap(layer)
        except ValueError:
            return layer
    return keras.models.clone_model(model, clone_function=clone)


def quantizable(registry) -> Callable[[keras.layers.Layer], bool]:
    """A QAT scheme's registry's answer, including whether it has a config for this layer (an Activation of a
    function it does not know is 'supported' as a class, then refused)."""
    def supports(layer) -> bool:
        if not registry.supports(layer):
            return False
        try:
            registry.get_quantize_config(layer)
        except (ValueError, KeyError):
            return False
        return True
    return supports


def annotated(model: keras.Model, registry, annotate: Callable) -> keras.Model:
    """The model with every layer the registry can quantize annotated for QAT (weighted or not: activations and
    merges carry their own output ranges), the rest left float for the converter to calibrate."""
    supports = quantizable(registry)

    def clone(layer):
        return annotate(layer) if not isinstance(layer, keras.layers.InputLayer) and supports(layer) else layer
    return keras.models.clone_model(model, clone_function=clone)


def careful(scheme):
    """The QAT scheme with a registry that supports a layer only where it has a config for it: tfmot asks it again
    for the float layer before a quantized one (its 'requires output quantize' pass), and the sparsity- and
    cluster-preserving registries say yes to a Rescaling, then raise."""
    from explorer.models import tf_runtime

    qk = tf_runtime.tfmot.quantization.keras

    class Registry(qk.QuantizeRegistry):
        def __init__(self, inner):
            self.inner, self.supports = inner, quantizable(inner)

        def get_quantize_config(self, layer):
            return self.inner.get_quantize_config(layer)

        def __getattr__(self, name):
            return getattr(self.inner, name)

    class Scheme(qk.QuantizeScheme):
        def get_layout_transformer(self):
            return scheme.get_layout_transformer()

        def get_quantize_registry(self):
            return Registry(scheme.get_quantize_registry())
    return Scheme()
