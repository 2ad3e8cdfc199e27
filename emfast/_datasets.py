"""Built-in demo data: generated from fixed parameters, so nothing is downloaded."""
import numpy as np


def make_demo(n_samples=200_000, random_state=0):
    """A 2-D mixture of five elongated, overlapping Gaussian clusters.

    Parameters
    ----------
    n_samples : int, default=200000
    random_state : int, default=0

    Returns
    -------
    X : ndarray of shape (n_samples, 2)
    labels : ndarray of shape (n_samples,)
        The generating component of each sample.
    """
    rng = np.random.default_rng(random_state)
    weights = np.array([0.3, 0.25, 0.2, 0.15, 0.1])
    means = np.array([[0.0, 0.0], [6.0, 1.0], [2.0, 7.0], [-5.0, 4.0], [8.0, 8.0]])
    angles = np.array([0.3, -0.8, 1.2, 0.0, 2.2])
    scales = np.array([[2.0, 0.6], [1.5, 0.4], [1.0, 1.0], [0.5, 2.5], [1.2, 0.3]])
    labels = rng.choice(len(weights), size=n_samples, p=weights)
    X = np.empty((n_samples, 2))
    for k, (angle, scale) in enumerate(zip(angles, scales)):
        rows = labels == k
        rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        X[rows] = means[k] + (rng.standard_normal((rows.sum(), 2)) * scale) @ rotation.T
    return X, labels
