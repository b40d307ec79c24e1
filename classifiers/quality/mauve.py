"""MAUVE (Pillutla et al. 2021) on sentence embeddings: how much of each set's mass the other set covers.

Why written here: the reference implementation (``mauve-text``) is not on this project's package index, and its
default featuriser is GPT-2 large, which the offline wheels do not ship. The algorithm is short and its pieces
are scikit-learn's: both sets' embeddings are reduced by PCA (90% of the variance), quantised together by
k-means into about one cluster per ten points, and the two cluster histograms P and Q compared along the mixture
R = lambda P + (1 - lambda) Q. MAUVE is the area under the curve of (exp(-c KL(Q|R)), exp(-c KL(P|R))) with the
reference's scaling c = 5, discretisation and end points, so 1 means the sets cover each other and values near
0 that they share nothing.

Why the figures are not comparable with published MAUVE scores: the featuriser here is the offline MiniLM
(mean-pooled sentence embeddings), not GPT-2, and the sets are single utterances. Compare a set's figure with the
real benchmark's own (its test split against its train split, in the same report).
"""

from __future__ import annotations

import numpy as np

SCALING = 5.0
DISCRETISATION = 25
EXPLAINED_VARIANCE = 0.9
POINTS_PER_CLUSTER = 10
KMEANS_RESTARTS = 5


def _kl(p: np.ndarray, q: np.ndarray) -> float:
    mask = p > 0
    return float(np.sum(p[mask] * np.log(p[mask] / q[mask])))


def _histograms(p_features: np.ndarray, q_features: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA

    joint = np.vstack([p_features, q_features]).astype(np.float64)
    joint = joint / np.maximum(np.linalg.norm(joint, axis=1, keepdims=True), 1e-12)
    reduced = PCA(n_components=EXPLAINED_VARIANCE, svd_solver="full", random_state=seed).fit_transform(joint)
    clusters = max(2, round(min(len(p_features), len(q_features)) / POINTS_PER_CLUSTER))
    labels = KMeans(n_clusters=clusters, n_init=KMEANS_RESTARTS, max_iter=500, random_state=seed).fit_predict(reduced)
    p = np.bincount(labels[:len(p_features)], minlength=clusters).astype(np.float64)
    q = np.bincount(labels[len(p_features):], minlength=clusters).astype(np.float64)
    return p / p.sum(), q / q.sum()


def mauve_score(p_features: np.ndarray, q_features: np.ndarray, *, seed: int = 0) -> float:
    """MAUVE of two embedding matrices (rows: utterances), in [0, 1]; 1 when their clusters' masses match."""
    if min(len(p_features), len(q_features)) < 2 * POINTS_PER_CLUSTER:
        raise ValueError(f"MAUVE needs at least {2 * POINTS_PER_CLUSTER} utterances per side")
    p, q = _histograms(p_features, q_features, seed)
    curve = [[0.0, 1.0]]
    for weight in np.linspace(1e-6, 1 - 1e-6, DISCRETISATION):
        mixture = weight * p + (1 - weight) * q
        curve.append([np.exp(-SCALING * _kl(q, mixture)), np.exp(-SCALING * _kl(p, mixture))])
    curve.append([1.0, 0.0])
    points = np.array(curve)
    order = np.argsort(points[:, 0])
    return float(np.trapezoid(points[order, 1], points[order, 0]))
