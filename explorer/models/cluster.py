"""Weight clustering with tfmot: each layer's weights share a few centroid values.

Applied after pruning when both are asked for, with sparsity preserved (zeros stay zeros).
Like pruning, clustering shrinks the compressed file, not the dense kernels' work.
"""

from __future__ import annotations

from explorer.data.datasets import Dataset
from explorer.spec import VariantSpec
from explorer.models.tf_runtime import keras
from explorer.models import tf_runtime  # tf_runtime.tfmot: imported on first use
from explorer.models.train import StageProgress, fine_tune


def cluster(model: keras.Model, data: Dataset, spec: VariantSpec, on_progress: StageProgress) -> keras.Model:
    """Return a clustered, stripped copy of a trained (possibly pruned) model."""
    ck = tf_runtime.tfmot.clustering.keras
    wrapped = ck.cluster_weights(
        model, number_of_clusters=spec.clusters,
        cluster_centroids_init=ck.CentroidInitialization.KMEANS_PLUS_PLUS,
        preserve_sparsity=spec.sparsity > 0,
    )
    fine_tune(wrapped, data, spec, on_progress, f"Clustering to {spec.clusters} values")
    return ck.strip_clustering(wrapped)
