"""Translates images into a target domain: `python -m stargan_tf.translate --checkpoint DIR
--input_dir IN --output_dir OUT --target_domain dog [--reference IMG | --seed N]`.

Every image under --input_dir (recursively; any size, resized to the model's) is translated in
one style, taken from --reference (an image of the target domain) or from the latent code of
--seed (default 0; the same as the seed's images from `python -m stargan_tf.sample`), and written
to --output_dir under the same relative path, as PNG (or --format=jpg). --input IMG --output FILE
translates one image. A progress bar (count/total, images/s) goes to stderr. --psi (default 1)
truncates the latent code's style toward the target domain's mean style (0 = the mean style;
cached in the model directory, mean_styles/); it does not apply to --reference.

This module is also the Python function `stargan_tf.translate(networks, images, target_domain,
reference=None, seed=None, psi=1.0)`: see `stargan_tf.inference.translation.translate`.
"""

import os
import sys
import types

from absl import flags, logging

from stargan_tf import cli
from stargan_tf.errors import UserError

FLAGS = flags.FLAGS
cli.define_checkpoint_flags("load")
flags.DEFINE_string("input_dir", None, "Folder of images to translate (searched recursively).")
flags.DEFINE_string("output_dir", None, "Where to write the translations (same relative paths).")
flags.DEFINE_string("input", None, "One image to translate (instead of --input_dir).")
flags.DEFINE_string("output", None, "Output file of --input (.png or .jpg).")
flags.DEFINE_string("target_domain", None, "Target domain: a name of the model's domains or an id.")
flags.DEFINE_string("reference", None, "Reference image of the target domain whose style to use.")
flags.DEFINE_integer(
    "seed",
    None,
    "Seed of the latent code whose style to use (default: 0, when no --reference is given).",
)
flags.DEFINE_float(
    "psi",
    1.0,
    "ψ truncation of the latent-guided style toward the target "
    "domain's mean style: 1 = none, 0 = the mean style, > 1 extrapolates; >= 0. "
    "Not with --reference.",
)
flags.DEFINE_integer("batch_size", 8, "Images translated at a time.")
flags.DEFINE_enum("format", "png", ["png", "jpg"], "Format of the files written to --output_dir.")


def _check_flags():
    if not FLAGS.checkpoint or FLAGS.target_domain is None:
        raise UserError("--checkpoint and --target_domain are required (see --help).")
    if not os.path.isdir(FLAGS.checkpoint):
        raise UserError(f"--checkpoint={FLAGS.checkpoint} is not a directory.")
    if bool(FLAGS.input_dir) == bool(FLAGS.input):
        raise UserError("Give --input_dir (with --output_dir) or --input (with --output).")
    if FLAGS.input_dir and not FLAGS.output_dir:
        raise UserError("--input_dir needs --output_dir.")
    if FLAGS.input and not FLAGS.output:
        raise UserError("--input needs --output (a .png or .jpg file).")
    if FLAGS.input and not os.path.isfile(FLAGS.input):
        raise UserError(f"--input={FLAGS.input} is not a file.")
    if FLAGS.reference is not None and FLAGS.seed is not None:
        raise UserError("Give --reference or --seed, not both.")
    if FLAGS.reference is not None and not os.path.isfile(FLAGS.reference):
        raise UserError(f"--reference={FLAGS.reference} is not a file.")
    if FLAGS.batch_size < 1:
        raise UserError(f"--batch_size={FLAGS.batch_size} must be at least 1.")
    if not FLAGS.psi >= 0 or FLAGS.psi == float("inf"):  # (NaN fails >= 0 too)
        raise UserError(
            f"--psi={FLAGS.psi:g}: ψ must be a number >= 0 (1 = no truncation, 0 = the "
            "domain's mean style, > 1 extrapolates)."
        )
    if FLAGS.reference is not None and FLAGS.psi != 1.0:
        raise UserError(
            f"--psi={FLAGS.psi:g} applies to latent-guided styles (--seed); a "
            "--reference's style is used as it is: drop --psi or --reference."
        )


def main(argv):
    del argv  # Unused.
    _check_flags()
    from stargan_tf.inference import batch, images, models, translation

    if FLAGS.input_dir:
        relpaths = images.list_images(FLAGS.input_dir)  # Fails fast, before loading the model.
    networks, _ = models.load_inference_networks(FLAGS.checkpoint, FLAGS.step)
    y_trg = models.domain_id(networks.config, FLAGS.target_domain)
    reference = FLAGS.reference and images.read_image(FLAGS.reference, networks.config.img_size)
    s_trg = translation.target_style(
        networks,
        y_trg,
        reference=reference,
        seed=FLAGS.seed,
        psi=FLAGS.psi,
        model_dir=FLAGS.checkpoint,
    )
    how = f"reference {FLAGS.reference}" if FLAGS.reference else f"seed {FLAGS.seed or 0}"
    if FLAGS.psi != 1.0:
        how += f", psi {FLAGS.psi:g}"
    domain = networks.config.domain_names[y_trg]
    if FLAGS.input:
        batch.translate_file(networks, s_trg, FLAGS.input, FLAGS.output)
        print(f"Translated {FLAGS.input} -> {FLAGS.output} ({domain}, {how}).")
        return
    count = batch.translate_folder(
        networks,
        s_trg,
        FLAGS.input_dir,
        relpaths,
        FLAGS.output_dir,
        FLAGS.batch_size,
        "." + FLAGS.format,
    )
    logging.info("Translated %d images into %s (%s).", count, domain, how)
    print(
        f"Translated {count} images from {FLAGS.input_dir} -> {FLAGS.output_dir} ({domain}, {how})."
    )


class _CallableModule(types.ModuleType):
    """`import stargan_tf.translate` binds this module to the package attribute `translate`,
    over the lazily exported function of the same name: calling the module calls the function."""

    def __call__(self, *args, **kwargs):
        from stargan_tf.inference.translation import translate

        return translate(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule


def run():
    """Entry point of `stargan-tf-translate` and `python -m stargan_tf.translate`."""
    cli.run(main)


if __name__ == "__main__":
    run()
