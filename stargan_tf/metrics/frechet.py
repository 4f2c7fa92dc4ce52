"""The Fréchet distance between two Gaussians fitted to features (the FID's last step)."""

import numpy as np
from absl import logging
from scipy import linalg

EPS = 1e-6  # Added to both covariances' diagonals when sqrtm fails (pytorch-fid's default).
MAX_DIAGONAL_IMAG = 1e-3  # Larger imaginary parts on sqrtm's diagonal mean a numerical failure.


def statistics(features):
    """(mu, sigma) of features [N, D]: float64 mean [D] and covariance [D, D] (unbiased, N - 1),
    as `np.mean` and `np.cov(rowvar=False)` give them in the official code and pytorch-fid."""
    features = np.asarray(features)
    if features.ndim != 2 or features.shape[0] < 2:
        raise ValueError(f"Need features [N >= 2, D] to fit a Gaussian, got {features.shape}.")
    return np.mean(features, axis=0, dtype=np.float64), np.cov(features, rowvar=False)


def frechet_distance(mu1, sigma1, mu2, sigma2, eps=EPS):
    """||mu1 - mu2||^2 + tr(sigma1 + sigma2 - 2 sqrt(sigma1 sigma2)), in float64.

    As pytorch-fid computes it (the official StarGAN v2 code does the same without the two
    safeguards): when scipy's `sqrtm` of sigma1 @ sigma2 is not finite (near-singular products),
    it is retried with `eps` added to both diagonals; a complex result keeps its real part unless
    an imaginary part on its diagonal exceeds 1e-3, which raises.

    Args:
      mu1, mu2: means [D].
      sigma1, sigma2: covariances [D, D].
      eps: the diagonal offset of the retry.

    Returns:
      The distance, a Python float.

    Raises:
      ValueError: shapes disagree, or sqrtm's result has a large imaginary diagonal.
    """
    mu1, mu2 = np.atleast_1d(np.float64(mu1)), np.atleast_1d(np.float64(mu2))
    sigma1, sigma2 = np.atleast_2d(np.float64(sigma1)), np.atleast_2d(np.float64(sigma2))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != mu1.shape * 2:
        raise ValueError(
            f"Shapes disagree: mu1 {mu1.shape}, mu2 {mu2.shape}, sigma1 {sigma1.shape}, "
            f"sigma2 {sigma2.shape} (expected [D] and [D, D])."
        )
    diff = mu1 - mu2
    covmean, _ = linalg.sqrtm(sigma1.dot(sigma2), disp=False)
    if not np.isfinite(covmean).all():
        logging.warning(
            "sqrtm(sigma1 @ sigma2) is not finite (near-singular covariances): adding %g to "
            "their diagonals.", eps
        )
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = linalg.sqrtm((sigma1 + offset).dot(sigma2 + offset))
    if np.iscomplexobj(covmean):
        imag = np.max(np.abs(np.diagonal(covmean).imag))
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=MAX_DIAGONAL_IMAG):
            raise ValueError(
                f"sqrtm(sigma1 @ sigma2) has an imaginary diagonal part of {imag:g}: the "
                "covariances are too degenerate (use more images than feature dimensions)."
            )
        covmean = covmean.real
    return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))
