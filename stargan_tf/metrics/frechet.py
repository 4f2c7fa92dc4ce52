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


def _sqrtm(a):
    """scipy's sqrtm without its `disp` argument (deprecated in SciPy 1.16, gone in 1.18): the
    same matrix pytorch-fid's `sqrtm(..., disp=False)` takes; accuracy is judged by the caller
    (non-finite -> the eps retry), as there."""
    import warnings

    with warnings.catch_warnings():
        # A singular product is expected here (fewer samples than dimensions); handled below.
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        out = linalg.sqrtm(a)
    return out[0] if isinstance(out, tuple) else out


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
    covmean = _sqrtm(sigma1.dot(sigma2))
    if not np.isfinite(covmean).all():
        logging.warning(
            "sqrtm(sigma1 @ sigma2) is not finite (near-singular covariances): adding %g to "
            "their diagonals.",
            eps,
        )
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = _sqrtm((sigma1 + offset).dot(sigma2 + offset))
    if np.iscomplexobj(covmean):
        imag = np.max(np.abs(np.diagonal(covmean).imag))
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=MAX_DIAGONAL_IMAG):
            raise ValueError(
                f"sqrtm(sigma1 @ sigma2) has an imaginary diagonal part of {imag:g}: the "
                "covariances are too degenerate (use more images than feature dimensions)."
            )
        covmean = covmean.real
    return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def frechet_distance_to_samples(mu1, sigma1, features2):
    """`frechet_distance(mu1, sigma1, *statistics(features2))`, fast when features2 has fewer
    samples than dimensions.

    Then sigma2 = A^T A / (n - 1) (A: the centred samples, [n, D]) has rank < n, and the nonzero
    eigenvalues of sigma1 @ sigma2 are those of the n x n symmetric matrix A sigma1 A^T / (n - 1):
    tr(sqrtm(sigma1 @ sigma2)) is the sum of their square roots. That is exact, and costs an
    n x n eigenproblem instead of a D x D matrix square root (minutes for D = 2048 on a small
    CPU); it agrees with sqrtm to rounding (about 1e-8 relative on the rank-deficient fixture
    cases, where sqrtm itself is least accurate). With n > D it is `frechet_distance` itself.
    """
    mu2, sigma2 = statistics(features2)
    n, dims = np.shape(features2)
    if n > dims:
        return frechet_distance(mu1, sigma1, mu2, sigma2)
    mu1, sigma1 = np.float64(mu1), np.float64(sigma1)
    centred = np.asarray(features2, np.float64) - mu2  # [n, D]
    small = centred @ sigma1 @ centred.T / (n - 1)  # [n, n]
    eigenvalues = np.linalg.eigvalsh((small + small.T) / 2)
    tr_covmean = np.sum(np.sqrt(np.clip(eigenvalues, 0, None)))
    diff = mu1 - mu2
    return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * tr_covmean)
