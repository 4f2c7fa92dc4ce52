"""Writes image folders as TFRecord shards for training (the layout of stargan_tf/data/format.py).

  stargan-tf-make-tfrecords --train_dir data/afhq/train --val_dir data/afhq/val \\
      --output_dir data/afhq_tfrecords --img_size 256

Input: root/<domain>/ folders; the domains are the sorted sub-folder names (hidden ones left out),
images are found recursively in each (jpg, jpeg, png, webp in any case; other files are ignored).
Each image is decoded, turned upright (EXIF orientation), converted to 8-bit RGB (transparency
composited over white; 16-bit scaled to 8-bit), center-cropped to a square on its short side and
resized once to img_size x img_size (Lanczos), then encoded as JPEG (--jpeg_quality) or PNG
(--format). A JPEG or PNG that already is 8-bit RGB img_size x img_size and upright keeps its
original bytes. Files that cannot be used (empty, truncated, corrupt, not an image, short side below
--min_size) are skipped, listed with their reason at the end and in OUT/<split>/skipped.txt.

Output: OUT/train/ (and OUT/val/, with train's domain list): data-*-of-*.tfrecord shards with the
records shuffled across them (seeded), and dataset.json, written last.

`python -m stargan_tf.make_tfrecords` is the same command; tools/make_tfrecords.py, its old path,
still calls it.
"""

import os

from absl import flags

from stargan_tf import cli
from stargan_tf.data import tfrecords
from stargan_tf.errors import UserError

FLAGS = flags.FLAGS
flags.DEFINE_string("train_dir", None, "Image folder of the train split: <train_dir>/<domain>/...")
flags.DEFINE_string("val_dir", None, "Image folder of the val split; same domains as train.")
flags.DEFINE_string("output_dir", None, "Directory to write <output_dir>/train (and /val) into.")
flags.DEFINE_integer(
    "img_size",
    None,
    "Side of the square output images, in pixels. Each image is center-cropped to a square on its "
    "short side, then resized once (Lanczos) to img_size x img_size: no stretching, no padding.",
    lower_bound=1,
)
flags.DEFINE_integer(
    "min_size", 32, "Skip images whose short side is below this, in pixels.", lower_bound=1
)
flags.DEFINE_string(
    "num_shards",
    "auto",
    "Shard files per split: a positive number, or 'auto' for shards of about "
    f"{tfrecords.TARGET_SHARD_BYTES >> 20} MiB (estimated from img_size and --format).",
)
flags.DEFINE_integer(
    "workers",
    None,
    "Threads decoding, resizing and encoding images; "
    f"default: the number of CPUs ({os.cpu_count()} here).",
    lower_bound=1,
)
flags.DEFINE_enum(
    "format",
    "jpeg",
    list(tfrecords.IMAGE_FORMATS),
    "Encoding of converted images (images kept as they are keep theirs).",
)
flags.DEFINE_integer(
    "jpeg_quality",
    95,
    "JPEG quality of converted images, with --format=jpeg.",
    lower_bound=1,
    upper_bound=100,
)
flags.DEFINE_integer("seed", 0, "Seed of the shuffle that spreads records over the shards.")
flags.DEFINE_boolean(
    "overwrite", False, "Replace an existing split written by this tool (its other files are kept)."
)


def parse_num_shards(value):
    if value == "auto":
        return None
    try:
        num_shards = int(value)
    except ValueError:
        num_shards = 0
    if num_shards < 1:
        raise UserError(f"--num_shards={value} is neither a positive number nor 'auto'.")
    return num_shards


def check_output_outside(output_dir, flag, root):
    out, root_real = os.path.realpath(output_dir), os.path.realpath(root)
    if os.path.commonpath([out, root_real]) == root_real:
        raise UserError(
            f"--output_dir={output_dir} is inside --{flag}={root}: it would be read as image "
            "folders; write it elsewhere."
        )


def main(argv):
    del argv  # Unused.
    num_shards = parse_num_shards(FLAGS.num_shards)
    splits = [("train", FLAGS.train_dir)] + ([("val", FLAGS.val_dir)] if FLAGS.val_dir else [])

    # Check every input and output before writing anything.
    found = {}
    for name, root in splits:
        found[name] = tfrecords.find_images(root)
        check_output_outside(FLAGS.output_dir, f"{name}_dir", root)
    if FLAGS.val_dir:
        tfrecords.check_same_domains(found["train"], found["val"], FLAGS.train_dir, FLAGS.val_dir)
    for name, root in splits:
        tfrecords.check_no_empty_domains(found[name], root)
        tfrecords.check_split_dir(os.path.join(FLAGS.output_dir, name), FLAGS.overwrite)

    for name, root in splits:
        summary = tfrecords.write_split(
            root,
            found[name],
            os.path.join(FLAGS.output_dir, name),
            FLAGS.img_size,
            min_size=FLAGS.min_size,
            image_format=FLAGS.format,
            jpeg_quality=FLAGS.jpeg_quality,
            num_shards=num_shards,
            workers=FLAGS.workers,
            seed=FLAGS.seed,
            overwrite=FLAGS.overwrite,
            progress=tfrecords.ProgressLine(name),
        )
        print(tfrecords.format_summary(name, summary), flush=True)


def run():
    """Entry point of `stargan-tf-make-tfrecords` and `python -m stargan_tf.make_tfrecords`."""
    flags.mark_flags_as_required(["train_dir", "output_dir", "img_size"])
    cli.run(main)


if __name__ == "__main__":
    run()
