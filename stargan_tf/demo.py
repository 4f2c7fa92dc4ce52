"""Writes the built-in demo dataset: `stargan-tf-demo --output_dir .demo/data`.

The same as `python -m stargan_tf.demo`; what it draws: `stargan_tf.data.demo`.
"""

import sys

from stargan_tf.data.demo import DemoSpec, write_demo_dataset
from stargan_tf.errors import UserError


def _define_flags():
    from absl import flags

    default = DemoSpec()
    flags.DEFINE_string(
        "output_dir",
        None,
        "Directory to write the demo dataset into (OUT/train, OUT/val, OUT/demo.json).",
    )
    flags.DEFINE_integer("seed", default.seed, "Seed of every image.", lower_bound=0)
    flags.DEFINE_integer(
        "img_size",
        default.img_size,
        "Image side in pixels (configs/demo.cfg trains at 32).",
        lower_bound=16,
    )
    flags.DEFINE_integer(
        "train_per_domain",
        default.train_per_domain,
        "Images per domain in the train split.",
        lower_bound=1,
    )
    flags.DEFINE_integer(
        "val_per_domain",
        default.val_per_domain,
        "Images per domain in the val split.",
        lower_bound=1,
    )
    flags.DEFINE_boolean(
        "overwrite",
        False,
        "Replace split directories that hold something "
        "other than a demo dataset (an earlier demo dataset is always replaced).",
    )


def main(argv):
    """Writes the demo dataset of the flags (see the module docstring)."""
    del argv  # Unused.
    from absl import flags

    f = flags.FLAGS
    if not f.output_dir:
        raise UserError("--output_dir is required (e.g. --output_dir .demo/data).")
    spec = DemoSpec(
        seed=f.seed,
        img_size=f.img_size,
        train_per_domain=f.train_per_domain,
        val_per_domain=f.val_per_domain,
    )
    write_demo_dataset(f.output_dir, spec, f.overwrite, log=lambda m: print(m, file=sys.stderr))


def run():
    """Entry point of `stargan-tf-demo`, `python -m stargan_tf.demo` (or `stargan_tf.data.demo`)
    and tools/make_demo_dataset.py."""
    from stargan_tf import cli

    _define_flags()
    cli.run(main)


if __name__ == "__main__":
    run()
