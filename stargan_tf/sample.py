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
--psi=0.5,0.7,1.0 renders the latent-guided outputs once per ψ (style truncation toward the
domain's mean style, as the official debug images): ψ = 1 as above, any other ψ with `_psi_<ψ>`
in the names (latent_psi_0.7.jpg, latent_psi_0.7/, video_latent_psi_0.7.mp4).
"""

import os

from absl import flags, logging

from stargan_tf import cli
from stargan_tf.errors import UserError

FLAGS = flags.FLAGS
cli.define_checkpoint_flags("load")
flags.DEFINE_string("src_dir", None, "Source images, one folder per domain (src/<domain>/).")
flags.DEFINE_string(
    "ref_dir",
    "",
    "Reference images, one folder per target domain named as the "
    "model's domains (ref/<domain>/); empty: no reference-guided outputs.",
)
flags.DEFINE_string("out_dir", None, "Where to write the grids, videos and images.")
flags.DEFINE_integer(
    "max_sources",
    32,
    "Use the first this many source images (official: the first val_batch_size = 32).",
)
flags.DEFINE_integer("max_references", 32, "Use the first this many reference images.")
flags.DEFINE_integer("num_styles", 10, "Latent codes per target domain (official: 10).")
flags.DEFINE_integer("seed", 777, "Seed of the first latent code; code k uses seed + k.")
flags.DEFINE_list(
    "psi",
    ["1.0"],
    "ψ truncation of the latent-guided styles toward their "
    "domain's mean style, one or more comma-separated values (one grid, image folder "
    "and video each): 1 = none, 0 = the mean style, > 1 extrapolates; >= 0.",
)
flags.DEFINE_boolean("videos", True, "Write the interpolation videos.")
flags.DEFINE_integer("video_sources", 8, "Sources shown in the videos (the first ones).")
flags.DEFINE_integer("fps", 15, "Frames per second of the videos (official: 15).")
flags.DEFINE_boolean(
    "save_images",
    True,
    "Also write every translated image (reference/, latent/), named after its inputs.",
)


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
    return psi_values(FLAGS.psi)


def psi_values(values):
    """The ψ values of --psi as floats; UserError for a bad, negative or repeated one. (Checked
    here, not by mean_style.check_psi: the flags fail fast, before TensorFlow loads.)"""
    if not values:
        raise UserError("--psi needs at least one value (1.0 = no truncation).")
    psis = []
    for value in values:
        try:
            psi = float(value)
        except ValueError:
            psi = float("nan")
        if psi >= 0 and psi != float("inf"):  # (NaN fails >= 0)
            psis.append(psi)
        else:
            raise UserError(
                f"--psi={value}: ψ must be a number >= 0 (1 = no truncation, 0 = the "
                "domain's mean style, > 1 extrapolates)."
            )
    names = [f"{psi:g}" for psi in psis]
    if len(set(names)) < len(names):
        raise UserError(f"--psi={','.join(values)} repeats a value; give each ψ once.")
    return psis


def main(argv):
    del argv  # Unused.
    psis = _check_flags()
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
        save_images=FLAGS.save_images, psis=psis, model_dir=FLAGS.checkpoint,
    )  # fmt: skip
    for path in written:
        logging.info("Wrote %s", path)
    print(
        f"Wrote {len(written)} outputs to {FLAGS.out_dir}: "
        + ", ".join(os.path.basename(p) for p in written)
    )


def run():
    """Entry point of `stargan-tf-sample` and `python -m stargan_tf.sample`."""
    cli.run(main)


if __name__ == "__main__":
    run()
