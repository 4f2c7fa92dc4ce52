"""Renders sample grids and interpolation videos of a model: `python -m stargan_tf.sample
--checkpoint DIR --src_dir src --ref_dir ref --out_dir OUT`.

From folders in the official layout (`src/<domain>/*.jpg`, `ref/<domain>/*.jpg`; any image size,
resized to the model's), writes to --out_dir:
  reference.jpg      the official reference-guided grid: sources across, references down;
  latent.jpg         the latent-guided grid: sources, then one row per (domain, latent code);
  video_ref.mp4      styles interpolated between consecutive references of a domain;
  video_latent.mp4   styles interpolated between the latent codes, domain by domain;
  reference/, latent/  every translated image, named after its source and reference or seed.
Videos are mp4 when an ffmpeg binary is found (PATH or imageio-ffmpeg), else animated GIFs.
The latent codes are those of seeds --seed, --seed + 1, ...: `python -m stargan_tf.translate
--seed` with one of them gives the same images.
"""

import os

from absl import flags, logging

from stargan_tf import cli
from stargan_tf.errors import UserError

FLAGS = flags.FLAGS
cli.define_checkpoint_flags("load")
flags.DEFINE_string("src_dir", None, "Source images, one folder per domain (src/<domain>/).")
flags.DEFINE_string("ref_dir", "", "Reference images, one folder per target domain named as the "
                    "model's domains (ref/<domain>/); empty: no reference-guided outputs.")
flags.DEFINE_string("out_dir", None, "Where to write the grids, videos and images.")
flags.DEFINE_integer("max_sources", 32, "Use the first this many source images (official: the "
                     "first val_batch_size = 32).")
flags.DEFINE_integer("max_references", 32, "Use the first this many reference images.")
flags.DEFINE_integer("num_styles", 10, "Latent codes per target domain (official: 10).")
flags.DEFINE_integer("seed", 777, "Seed of the first latent code; code k uses seed + k.")
flags.DEFINE_boolean("videos", True, "Write the interpolation videos.")
flags.DEFINE_integer("video_sources", 8, "Sources shown in the videos (the first ones).")
flags.DEFINE_integer("fps", 15, "Frames per second of the videos (official: 15).")
flags.DEFINE_boolean("save_images", True, "Also write every translated image (reference/, "
                     "latent/), named after its inputs.")


def _check_flags():
    for name in ("checkpoint", "src_dir", "out_dir"):
        if not getattr(FLAGS, name):
            raise UserError(f"--{name} is required (see --help).")
    for name in ("max_sources", "max_references", "num_styles", "video_sources", "fps"):
        if getattr(FLAGS, name) < 1:
            raise UserError(f"--{name}={getattr(FLAGS, name)} must be at least 1.")
    for name in ("checkpoint", "src_dir", "ref_dir"):
        path = getattr(FLAGS, name)
        if path and not os.path.isdir(path):
            raise UserError(f"--{name}={path} is not a directory.")


def main(argv):
    del argv  # Unused.
    _check_flags()
    from stargan_tf.inference import models, sampling

    networks, _ = models.load_inference_networks(FLAGS.checkpoint, FLAGS.step)
    sources = sampling.read_folder(FLAGS.src_dir, networks.config, FLAGS.max_sources)
    references = (
        sampling.read_folder(FLAGS.ref_dir, networks.config, FLAGS.max_references, targets=True)
        if FLAGS.ref_dir
        else None
    )
    written = sampling.render_all(
        networks, sources, references, FLAGS.out_dir, num_styles=FLAGS.num_styles,
        seed=FLAGS.seed, videos=FLAGS.videos, video_sources=FLAGS.video_sources, fps=FLAGS.fps,
        save_images=FLAGS.save_images,
    )  # fmt: skip
    for path in written:
        logging.info("Wrote %s", path)
    print(f"Wrote {len(written)} outputs to {FLAGS.out_dir}: "
          + ", ".join(os.path.basename(p) for p in written))


def run():
    """Entry point of `stargan-tf-sample` and `python -m stargan_tf.sample`."""
    cli.run(main)


if __name__ == "__main__":
    run()
