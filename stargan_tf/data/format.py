"""The on-disk layout of a dataset split written by `stargan-tf-make-tfrecords`.

    OUT/<split>/                      one directory per split ("train", "val")
    OUT/<split>/data-00000-of-00008.tfrecord, ...   shards of tf.train.Example records
    OUT/<split>/dataset.json          the domain list and counts (written last, atomically)

Each record holds one image::

    image     bytes   encoded JPEG or PNG, 8-bit RGB, img_size x img_size
    label     int64   domain id: index into dataset.json's "domains" (sorted folder names)
    filename  bytes   path of the source image relative to the split's root folder

dataset.json::

    {"format": "stargan_tf.tfrecords", "version": 1, "img_size": 256,
     "domains": ["cat", "dog", "wild"], "counts": [5153, 4739, 4738], "num_examples": 14630,
     "shards": ["data-00000-of-00008.tfrecord", ...], "shard_bytes": [67108412, ...],
     "shard_domains": [0, 0, 0, 1, 1, 1, 2, 2]}

`shard_bytes` lets a reader notice a truncated or swapped shard before training starts instead of
hours into it. `shard_domains` says which domain's images each shard holds (each holds one
domain's), so a reader of one domain opens its shards only. Splits written before either
existed lack them: their shards are not checked, and mix domains (readers filter by label).
"""

import json
import os

import tensorflow as tf

from stargan_tf.errors import UserError

FORMAT = "stargan_tf.tfrecords"
VERSION = 1
METADATA_FILE = "dataset.json"
SHARD_PATTERN = "data-{index:05d}-of-{count:05d}.tfrecord"

FEATURES = {
    "image": tf.io.FixedLenFeature([], tf.string),
    "label": tf.io.FixedLenFeature([], tf.int64),
    "filename": tf.io.FixedLenFeature([], tf.string),
}


def make_example(image_bytes, label, filename):
    """A tf.train.Example of one encoded image (bytes), its domain id and source file name."""
    feature = {
        "image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[image_bytes])),
        "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[int(label)])),
        "filename": tf.train.Feature(bytes_list=tf.train.BytesList(value=[filename.encode()])),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def parse_example(serialized):
    """A serialized record -> {"image": encoded bytes, "label": int64, "filename": string}."""
    return tf.io.parse_single_example(serialized, FEATURES)


def read_metadata(split_dir):
    """Reads dataset.json of a split directory; a missing or foreign directory is a UserError."""
    path = os.path.join(split_dir, METADATA_FILE)
    if not os.path.isdir(split_dir):
        raise UserError(f"Dataset directory {split_dir} does not exist.")
    if not os.path.exists(path):
        raise UserError(
            f"{split_dir} is not a dataset split: it has no {METADATA_FILE} "
            "(write one with stargan-tf-make-tfrecords)."
        )
    try:
        with open(path) as f:
            meta = json.load(f)
    except ValueError as e:
        raise UserError(f"{path} is not valid JSON: {e}") from None
    if meta.get("format") != FORMAT:
        raise UserError(f"{path} is not a stargan_tf dataset (format {meta.get('format')!r}).")
    return meta


def check_shard_sizes(split_dir, meta):
    """UserError when a shard's size differs from the one dataset.json recorded."""
    sizes = meta.get("shard_bytes")
    if not sizes:
        return
    for name, expected in zip(meta["shards"], sizes):
        path = os.path.join(split_dir, name)
        actual = tf.io.gfile.stat(path).length
        if actual != expected:
            raise UserError(
                f"{path} is {actual} bytes, but {METADATA_FILE} recorded {expected}: the shard is "
                f"{'truncated' if actual < expected else 'not the one written'} (an interrupted "
                "copy?). Copy it again, or write the split again with stargan-tf-make-tfrecords "
                "(python -m stargan_tf.make_tfrecords)."
            )


def shard_paths(split_dir, meta=None):
    """Paths of the split's shards, in order."""
    meta = meta or read_metadata(split_dir)
    return [os.path.join(split_dir, name) for name in meta["shards"]]
