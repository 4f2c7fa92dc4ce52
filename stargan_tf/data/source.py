"""Where training and evaluation images come from: the `Source` of a split, and the TFRecord
split directories' reader (`stargan_tf.data.tfds_source` makes the TFDS ones)."""

import dataclasses
from collections.abc import Callable

import tensorflow as tf

from stargan_tf.data import format as data_format
from stargan_tf.errors import UserError

_MAX_OPEN_SHARDS = 16  # Shards each domain stream reads at a time (round-robin).
_PARSE_BATCH = 64  # Records parsed per call.


@dataclasses.dataclass(frozen=True)
class Source:
    """A split to read.

    Attributes:
      name: where it comes from, for messages.
      domains: domain names; a record's label indexes them.
      counts: number of images per domain.
      img_size: side of the stored images, or None when they vary (they are resized anyway).
      read: `read(shuffle_seed, domain=None)` -> a `tf.data.Dataset` of one pass over the
        split's records (those of label `domain` only, unless None), dicts
        {"image": encoded bytes, "label": int64, "filename": string unique in the split}.
        `shuffle_seed=None` reads in the stored order; an int shuffles the order in which shards
        (files) are read, anew on each iteration.
      shuffles_records: True when `read(seed)` shuffles the records themselves uniformly (e.g.
        a list of image files): the training streams then need no shuffle buffer.
    """

    name: str
    domains: tuple[str, ...]
    counts: tuple[int, ...]
    img_size: int | None
    read: Callable[..., tf.data.Dataset]
    shuffles_records: bool = False

    @property
    def num_domains(self):
        return len(self.domains)

    @property
    def num_examples(self):
        return sum(self.counts)


def split_dir_source(split_dir):
    """A `Source` reading a split directory in the TFRecord layout of `stargan_tf.data.format`."""
    meta = data_format.read_metadata(split_dir)
    files = data_format.shard_paths(split_dir, meta)
    missing = [f for f in files if not tf.io.gfile.exists(f)]
    if missing:
        raise UserError(
            f"{split_dir}/{data_format.METADATA_FILE} lists shards that do not exist: "
            f"{', '.join(missing[:3])}. Write the split again with stargan-tf-make-tfrecords."
        )
    data_format.check_shard_sizes(split_dir, meta)

    shard_domains = meta.get("shard_domains")

    def read(shuffle_seed, domain=None):
        files_read = files
        if domain is not None and shard_domains is not None:
            # One domain's shards only (each holds one domain): 1/num_domains of the reading.
            files_read = [f for f, d in zip(files, shard_domains) if d == domain]
        return _read_shards(files_read, shuffle_seed, domain)

    return Source(
        name=split_dir,
        domains=tuple(meta["domains"]),
        counts=tuple(int(c) for c in meta["counts"]),
        img_size=meta.get("img_size"),
        read=read,
    )


def _read_shards(files, shuffle_seed, domain):
    """One pass over the records of `files` (those of label `domain` unless None), in shard
    order, or in a shuffled shard order with `shuffle_seed`."""
    if shuffle_seed is None or len(files) == 1:
        serialized = tf.data.TFRecordDataset(files)
    else:
        # Reading several shards round-robin mixes records the writer stored far apart.
        names = tf.data.Dataset.from_tensor_slices(files)
        names = names.shuffle(len(files), seed=shuffle_seed, reshuffle_each_iteration=True)
        serialized = names.interleave(
            tf.data.TFRecordDataset,
            cycle_length=min(len(files), _MAX_OPEN_SHARDS),
            block_length=1,
        )

    # Parsed (and filtered) 64 at a time: per-record function calls would cost more than the
    # parsing itself. (The filter keeps every record of a one-domain shard.)
    def parse(batch):
        records = tf.io.parse_example(batch, data_format.FEATURES)
        if domain is not None:
            keep = tf.equal(records["label"], domain)
            records = {k: tf.boolean_mask(v, keep) for k, v in records.items()}
        return records

    return serialized.batch(_PARSE_BATCH).map(parse).unbatch()
