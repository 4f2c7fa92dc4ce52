"""TensorFlow Datasets image datasets as training and evaluation sources.

  --train_data=tfds:NAME[:split]                    e.g. tfds:cats_vs_dogs, tfds:cifar10:test
  --train_data=tfds:imagefolder:/root_dir[:split]   root_dir/<split>/<label>/<image> files

NAME is what `tfds.builder` takes ("name", "name/config", "name/config:1.2.0"); the split
defaults to "train" and may be a TFDS split expression ("train[:90%]"). The dataset needs an
"image" feature and a `ClassLabel` "label" feature: the label is the domain, and the domain names
are the label's names. Named datasets are read from `data_dir` (default: TFDS's, $TFDS_DATA_DIR or
~/tensorflow_datasets) and prepared there first when they are not yet (which may download).
`imagefolder` uses `tfds.folder_dataset.ImageFolder`: nothing to prepare, no network.

The domain counts come from one pass over the split's labels when the source is opened (TFDS
records no per-label counts). Images are read still encoded (`tfds.decode.SkipDecoding`), so the
pipelines decode, augment and buffer them exactly as they do records of a TFRecord split.

tensorflow-datasets is an optional dependency: `pip install 'stargan_tf[tfds]'`.
"""

import os
import re

import tensorflow as tf

from stargan_tf.data.source import Source
from stargan_tf.errors import UserError

PREFIX = "tfds:"
IMAGE_FOLDER = "imagefolder"
DEFAULT_SPLIT = "train"


def parse_spec(spec):
    """`tfds:NAME[:split]` or `tfds:imagefolder:/root_dir[:split]` -> (name, split, root_dir).

    For NAME the split is what follows it after ":" ("tfds:mnist:train[:50%]" reads split
    "train[:50%]"); a version ":1.2.0" right after the name belongs to NAME. For imagefolder,
    root_dir is everything after "imagefolder:" when that is a directory, otherwise the part
    before the last ":" (the split after it). root_dir is None for named datasets.
    """
    if not spec.startswith(PREFIX):
        raise UserError(f"{spec!r} is not a TFDS source: it must start with {PREFIX!r}.")
    rest = spec[len(PREFIX) :]
    if rest.startswith(IMAGE_FOLDER + ":"):
        path = rest[len(IMAGE_FOLDER) + 1 :]
        split = DEFAULT_SPLIT
        if not os.path.isdir(path) and ":" in path:
            path, split = path.rsplit(":", 1)
        if not path:
            raise UserError(f"{spec!r}: give the image folder's root, tfds:imagefolder:/path.")
        return IMAGE_FOLDER, split or DEFAULT_SPLIT, path
    m = re.match(r"^([^:]*(?::\d+\.\d+\.\d+)?)(?::(.*))?$", rest)
    name, split = m.group(1), m.group(2)
    if not name:
        raise UserError(f"{spec!r}: give a dataset name, e.g. tfds:cats_vs_dogs[:train].")
    return name, split or DEFAULT_SPLIT, None


def import_tfds():
    """The tensorflow_datasets module; a UserError naming the extra when it is not installed."""
    try:
        import tensorflow_datasets as tfds  # Slow to import: only when a tfds: source is used.
    except ImportError:
        raise UserError(
            "tfds: inputs need tensorflow-datasets, which is not installed: "
            "pip install 'stargan_tf[tfds]'."
        ) from None
    return tfds


def _builder(name, root_dir, data_dir):
    tfds = import_tfds()

    if root_dir is not None:
        if not os.path.isdir(root_dir):
            raise UserError(f"tfds:imagefolder: {root_dir} is not a directory.")
        return tfds.folder_dataset.ImageFolder(root_dir)
    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except ValueError as e:  # Including tfds's DatasetNotFoundError.
        raise UserError(f"TFDS has no dataset {name!r}: {e}") from None
    if not builder.is_prepared():
        builder.download_and_prepare()
    return builder


def open_tfds_source(spec, data_dir=None):
    """A `stargan_tf.data.source.Source` reading a TFDS dataset's split (see the module docstring).

    Args:
      spec: "tfds:NAME[:split]" or "tfds:imagefolder:/root_dir[:split]".
      data_dir: TFDS data directory for named datasets; None = TFDS's default.

    Returns:
      A `stargan_tf.data.source.Source`; its records' "filename" is the dataset's
      "image/filename" feature
      (relative to root_dir/split for imagefolder) when it has one, else the TFDS example id.
    """
    tfds = import_tfds()
    name, split, root_dir = parse_spec(spec)
    builder = _builder(name, root_dir, data_dir)
    features = builder.info.features
    names = list(features.keys())
    if (
        "image" not in names
        or "label" not in names
        or not isinstance(features["label"], tfds.features.ClassLabel)
    ):
        raise UserError(
            f"{spec}: a TFDS source needs an 'image' feature and a ClassLabel 'label' feature "
            f"(the domain); {name} has {', '.join(names)}."
        )
    domains = tuple(features["label"].names)
    if root_dir is None and split.split("[")[0] not in builder.info.splits:
        raise UserError(f"{spec}: no split {split!r}; {name} has {list(builder.info.splits)}.")
    if root_dir is not None and split not in builder.info.splits:
        raise UserError(f"{spec}: no split folder {split!r}; it has {list(builder.info.splits)}.")
    filename_key = "image/filename" if "image/filename" in features else "tfds_id"
    prefix = os.path.join(root_dir, split) + os.sep if root_dir is not None else ""

    def read(shuffle_seed, domain=None):
        shuffle = shuffle_seed is not None and root_dir is None  # ImageFolder's is unseeded.
        read_config = tfds.ReadConfig(
            add_tfds_id=filename_key == "tfds_id",
            shuffle_seed=shuffle_seed,
            shuffle_reshuffle_each_iteration=True,
            try_autocache=False,  # A cache would be saved whole in iterator checkpoints.
            skip_prefetch=True,
        )
        ds = builder.as_dataset(
            split=split,
            shuffle_files=shuffle,
            decoders={"image": tfds.decode.SkipDecoding()},
            read_config=read_config,
        )

        def record(ex):
            filename = ex[filename_key]
            if prefix:
                filename = tf.strings.regex_replace(filename, "^" + _regex_escape(prefix), "")
            return {"image": ex["image"], "label": ex["label"], "filename": filename}

        ds = ds.map(record)
        if domain is not None:
            ds = ds.filter(lambda r: tf.equal(r["label"], domain))
        return ds

    counts = _label_counts(read(None), len(domains))
    return Source(name=spec, domains=domains, counts=counts, img_size=None, read=read)


def _regex_escape(text):
    return "".join("\\" + c if c in r"\.^$|?*+()[]{}" else c for c in text)


def _label_counts(records, num_domains):
    """Images per domain, from one pass over the labels (TFDS stores no per-label counts)."""

    def add(acc, labels):
        return acc + tf.math.bincount(
            labels, minlength=num_domains, maxlength=num_domains, dtype=tf.int64
        )

    labels = records.map(lambda r: r["label"]).batch(4096)
    counts = labels.reduce(tf.zeros([num_domains], tf.int64), add)
    return tuple(int(c) for c in counts.numpy())
