"""Weight clustering with tfmot: each layer's weights share a few centroid values.

Applied after pruning when both are asked for, with sparsity preserved (zeros stay zeros).
Like pruning, clustering shrinks the compressed file, not the dense kernels' work.
"""

from __future__ import annotations

from explorer.data.datasets import Dataset
from explorer.spec import VariantSpec
from explorer.models.tf_runtime import keras
from explorer.models import lever_scope, tf_runtime  # tf_runtime.tfmot: imported on first use
from explorer.models.train import StageProgress, fine_tune


def cluster(model: keras.Model, data: Dataset, spec: VariantSpec, on_progress: StageProgress) -> keras.Model:
    """Return a clustered, stripped copy of a trained (possibly pruned) model."""
    ck = tf_runtime.tfmot.clustering.keras
    def wrap(layer):
        if min((w.shape.num_elements() for w in layer.trainable_weights if "kernel" in w.name), default=0) < spec.clusters:
            raise ValueError("fewer weights than clusters: already as few values")  # left as it is
        return ck.cluster_weights(layer, number_of_clusters=spec.clusters, preserve_sparsity=spec.sparsity > 0,
                                  cluster_centroids_init=ck.CentroidInitialization.KMEANS_PLUS_PLUS)
    wrapped = lever_scope.wrapped(model, wrap)
    fine_tune(wrapped, data, spec, on_progress, f"Clustering to {spec.clusters} values")
    return ck.strip_clustering(wrapped)
