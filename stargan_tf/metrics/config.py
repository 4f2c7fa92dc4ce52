"""What an evaluation reads and how it runs: a frozen dataclass (no TensorFlow import)."""

import dataclasses
import os

from stargan_tf.errors import UserError

MODES = ("latent", "reference")
VARIANTS = ("official", "fid")  # The Inception variants, see stargan_tf.metrics.inception.
DEFAULT_CACHE_DIR = os.path.join(os.path.expanduser("~"), ".cache", "stargan_tf", "fid_stats")
WEIGHT_FLAGS = ("inception_weights", "alexnet_weights", "lpips_weights")


@dataclasses.dataclass(frozen=True)
class EvalConfig:
    """What an evaluation reads and how it runs.

    Attributes:
      train_data: the training images (FID's real side): an image folder `root/<domain>/`, a
        TFRecord split directory or `tfds:NAME[:split]`.
      val_data: the validation images (sources and references), same forms.
      inception_weights: torchvision's `inception_v3_google-0cc3c7bd.pth` (inception="official")
        or pytorch-fid's `pt_inception-2015-12-05-6726825d.pth` (inception="fid").
      alexnet_weights: torchvision's `alexnet-owt-7be5be79.pth` (LPIPS's trunk).
      lpips_weights: the official `metrics/lpips_weights.ckpt` (LPIPS's 1x1 layers).
      modes: a subset of ("latent", "reference").
      inception: "official" (comparable with the paper) or "fid" (with the wider field).
      num_outs_per_domain: outputs per source image and task (official: 10).
      val_batch_size: source images per batch (official: 32); LPIPS groups are per batch.
      seed: seeds the latent codes and the reference order.
      stats_cache: directory of the cached real-image statistics; "" = no cache.
    """

    train_data: str
    val_data: str
    inception_weights: str
    alexnet_weights: str
    lpips_weights: str
    modes: tuple = MODES
    inception: str = "official"
    num_outs_per_domain: int = 10
    val_batch_size: int = 32
    seed: int = 777
    stats_cache: str = DEFAULT_CACHE_DIR

    def validate(self):
        """Raises UserError naming every problem a user can fix."""
        problems = []
        if not self.modes or any(m not in MODES for m in self.modes):
            problems.append(f"modes {list(self.modes)}: use latent, reference or both")
        if self.inception not in VARIANTS:
            problems.append(f"--inception={self.inception!r}: use official or fid")
        if self.val_batch_size < 1:
            problems.append(f"--val_batch_size={self.val_batch_size} must be >= 1")
        if self.num_outs_per_domain < 2:
            problems.append(
                f"--num_outs_per_domain={self.num_outs_per_domain} must be >= 2 "
                "(LPIPS compares pairs of outputs)"
            )
        for name in ("train_data", "val_data") + WEIGHT_FLAGS:
            if not getattr(self, name):
                problems.append(f"--{name} is required")
        for name in WEIGHT_FLAGS:
            path = getattr(self, name)
            if path and not os.path.isfile(path):
                problems.append(
                    f'--{name}={path} is not a file (see the README, "Evaluate '
                    '(FID, LPIPS)", for where to get it)'
                )
        if problems:
            raise UserError("; ".join(problems) + ".")
