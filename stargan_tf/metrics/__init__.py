"""Evaluation metrics of the StarGAN v2 paper: FID (two InceptionV3 variants) and LPIPS.

`frechet_distance(mu1, sigma1, mu2, sigma2)` and `statistics(features)` are numpy/scipy only;
`inception`, `lpips` and `protocol` (the official evaluation loop) import TensorFlow.
"""

from stargan_tf.metrics.frechet import frechet_distance, statistics

__all__ = ["frechet_distance", "statistics"]
