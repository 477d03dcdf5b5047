"""Magnitude pruning with tfmot: wrap -> fine-tune with UpdatePruningStep -> strip.

Pruning zeroes the smallest weights. TFLite's dense kernels still multiply the zeros, so a pruned
model runs no faster; what shrinks is the gzipped file (zeros compress well).
"""

from __future__ import annotations

from explorer.data.datasets import Dataset
from explorer.spec import VariantSpec
from explorer.models.tf_runtime import keras
from explorer.models import lever_scope, tf_runtime  # tf_runtime.tfmot: imported on first use
from explorer.models.train import StageProgress, fine_tune


def schedule(spec: VariantSpec, steps: int) -> tf_runtime.tfmot.sparsity.keras.PruningSchedule:
    """Constant sparsity from the first step, or polynomial decay reaching it at 2/3 of fine-tuning."""
    sparsity = tf_runtime.tfmot.sparsity.keras
    if spec.schedule == "constant":
        return sparsity.ConstantSparsity(spec.sparsity, begin_step=0, frequency=max(1, steps // 10))
    return sparsity.PolynomialDecay(initial_sparsity=0.0, final_sparsity=spec.sparsity, begin_step=0,
                                    end_step=max(1, (2 * steps) // 3), frequency=max(1, steps // 20))


def prune(model: keras.Model, data: Dataset, spec: VariantSpec, on_progress: StageProgress) -> keras.Model:
    """Return a pruned, stripped copy of a trained model (the input model is left unchanged)."""
    sparsity = tf_runtime.tfmot.sparsity.keras
    steps = spec.tune_epochs * -(-len(data.x_train) // spec.batch_size)
    wrapped = lever_scope.wrapped(model, lambda layer: sparsity.prune_low_magnitude(
        layer, pruning_schedule=schedule(spec, steps)))
    fine_tune(wrapped, data, spec, on_progress, f"Pruning to {spec.sparsity:.0%}",
              callbacks=[sparsity.UpdatePruningStep()])
    return sparsity.strip_pruning(wrapped)
