"""Aligns portraits like CelebA-HQ (the official `align` step): `python -m stargan_tf.align
--input_dir IN --output_dir OUT --lm_path celeba_lm_mean.npz --wing_path wing.ckpt`.

Every image under --input_dir (recursively) is resized to --img_size square, its 98 landmarks are
found with the FAN (the official wing.ckpt) or read from --landmarks, and it is rotated, scaled
and cropped onto the CelebA-HQ mean landmarks (see `stargan_tf.data.face_align`); the result goes to
--output_dir under the same relative path, as PNG. The official FAN download (bash download.sh
wing) holds both wing.ckpt and celeba_lm_mean.npz.
"""

import os

from absl import flags, logging

from stargan_tf import cli
from stargan_tf.errors import UserError

FLAGS = flags.FLAGS
flags.DEFINE_string("input_dir", None, "Folder of portraits to align (searched recursively).")
flags.DEFINE_string(
    "output_dir", None, "Where to write the aligned faces (same relative paths, .png)."
)
flags.DEFINE_string(
    "lm_path",
    "expr/checkpoints/celeba_lm_mean.npz",
    "The official CelebA-HQ mean landmarks (celeba_lm_mean.npz, from bash download.sh wing).",
)
flags.DEFINE_string(
    "wing_path",
    "expr/checkpoints/wing.ckpt",
    "The official FAN weights (wing.ckpt) that find the landmarks; unused with --landmarks.",
)
flags.DEFINE_string(
    "landmarks",
    "",
    "An .npz of known landmarks instead of the FAN: one [98, 2] "
    "array (x, y in pixels of the --img_size image) per input, keyed by its path "
    "relative to --input_dir.",
)
flags.DEFINE_integer(
    "img_size",
    256,
    "Size of the (square) output; inputs are resized to it first, as the official step does.",
)


def _check_flags():
    for name in ("input_dir", "output_dir"):
        if not getattr(FLAGS, name):
            raise UserError(f"--{name} is required (see --help).")
    if FLAGS.img_size < 256 or FLAGS.img_size % 256:
        raise UserError(
            f"--img_size={FLAGS.img_size}: use a multiple of 256 (the mean landmarks "
            "are at 256 px)."
        )
    if not os.path.isfile(FLAGS.lm_path):
        raise UserError(
            f"--lm_path={FLAGS.lm_path} is not a file: it is the official "
            "celeba_lm_mean.npz (bash download.sh wing in the official repository)."
        )
    if FLAGS.landmarks and not os.path.isfile(FLAGS.landmarks):
        raise UserError(f"--landmarks={FLAGS.landmarks} is not a file.")
    if not FLAGS.landmarks and not os.path.isfile(FLAGS.wing_path):
        raise UserError(
            f"--wing_path={FLAGS.wing_path} is not a file: the FAN weights wing.ckpt "
            "(bash download.sh wing in the official repository), or give --landmarks."
        )


def _known_landmarks(path, relpaths):
    import numpy as np

    with np.load(path) as f:
        known = {k: np.asarray(f[k], np.float64) for k in f.files}
    missing = [p for p in relpaths if p not in known]
    if missing:
        raise UserError(
            f"--landmarks={path} has no landmarks for {', '.join(missing[:5])}; key "
            "them by the path relative to --input_dir."
        )
    for p in relpaths:
        if known[p].shape != (98, 2):
            raise UserError(
                f"--landmarks={path}: {p} has shape {known[p].shape}, expected (98, 2)."
            )
    return known


def main(argv):
    del argv  # Unused.
    _check_flags()
    import numpy as np
    from PIL import Image

    from stargan_tf.data import face_align
    from stargan_tf.inference.images import list_images

    relpaths = list_images(FLAGS.input_dir)
    mean = face_align.read_mean_landmarks(FLAGS.lm_path)
    known = _known_landmarks(FLAGS.landmarks, relpaths) if FLAGS.landmarks else None
    fan = None
    if known is None:
        from stargan_tf.official.fan import convert_official_fan

        fan = convert_official_fan(FLAGS.wing_path)
    size = FLAGS.img_size
    for relpath in relpaths:
        with Image.open(os.path.join(FLAGS.input_dir, relpath)) as img:
            image = np.asarray(img.convert("RGB").resize((size, size), Image.BILINEAR))
        landmarks = (
            known[relpath]
            if known is not None
            else face_align.fan_landmarks(fan, image[None] / 127.5 - 1.0)[0]
        )
        aligned, _ = face_align.align_face(image, landmarks, mean, size)
        out = os.path.join(FLAGS.output_dir, os.path.splitext(relpath)[0] + ".png")
        os.makedirs(os.path.dirname(out), exist_ok=True)
        Image.fromarray(aligned).save(out)
        logging.info("Aligned %s -> %s", relpath, out)
    print(f"Aligned {len(relpaths)} images into {FLAGS.output_dir}.")


def run():
    """Entry point of `stargan-tf-align` and `python -m stargan_tf.align`."""
    cli.run(main)


if __name__ == "__main__":
    run()
