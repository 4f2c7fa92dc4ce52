"""Small datasets for tests: TFRecord splits in the layout of `stargan_tf.data.format`, and
image folders. Independent of tools/make_tfrecords.py, so the pipelines are tested on their own."""

import io
import json
import os

import numpy as np
from PIL import Image

from stargan_tf.data import format as data_format


def encode(image, fmt="png", quality=95):
    """uint8 [H, W, 3] -> encoded bytes."""
    buf = io.BytesIO()
    kwargs = {"quality": quality} if fmt == "jpeg" else {}
    Image.fromarray(image).save(buf, format=fmt.upper(), **kwargs)
    return buf.getvalue()


def solid(size, red, green, blue=128):
    """A uint8 [size, size, 3] image of one colour."""
    return np.broadcast_to(np.array([red, green, blue], np.uint8), (size, size, 3)).copy()


def coded_images(counts, size):
    """Solid images whose colour encodes (domain, index): red = 40 + 100 * domain,
    green = 3 * index.

    Returns {domain_name: [image, ...]} with domain names "d0", "d1", ...
    """
    return {
        f"d{d}": [solid(size, 40 + 100 * d, 3 * i) for i in range(n)] for d, n in enumerate(counts)
    }


def decode_code(x):
    """The (domain, index) of a coded image given as float [S, S, 3] in [-1, 1]."""
    pixel = np.round((np.asarray(x)[0, 0] + 1.0) * 127.5)
    return round(float(pixel[0] - 40) / 100), round(float(pixel[1]) / 3)


def write_split(split_dir, images_by_domain, num_shards=2, fmt="png", img_size=None):
    """Writes {domain: [uint8 image, ...]} as a split directory; records interleave the domains.

    Domains are sorted by name (labels index the sorted list), as the real writer does.
    Returns the list of (filename, label) in stored order.
    """
    os.makedirs(split_dir, exist_ok=True)
    domains = sorted(images_by_domain)
    items = []
    for label, name in enumerate(domains):
        for i, image in enumerate(images_by_domain[name]):
            items.append((f"{name}/{i:04d}.{fmt}", label, image))
    shards = [
        data_format.SHARD_PATTERN.format(index=i, count=num_shards) for i in range(num_shards)
    ]
    writers = [tf_writer(os.path.join(split_dir, s)) for s in shards]
    for n, (filename, label, image) in enumerate(items):
        writers[n % num_shards].write(data_format.make_example(encode(image, fmt), label, filename))
    for w in writers:
        w.close()
    meta = {
        "format": data_format.FORMAT,
        "version": data_format.VERSION,
        "img_size": img_size or int(items[0][2].shape[0]),
        "domains": domains,
        "counts": [len(images_by_domain[d]) for d in domains],
        "num_examples": len(items),
        "shards": shards,
    }
    with open(os.path.join(split_dir, data_format.METADATA_FILE), "w") as f:
        json.dump(meta, f)
    # Stored order: shard 0's records, then shard 1's, ...
    return [
        (items[n][0], items[n][1])
        for s in range(num_shards)
        for n in range(s, len(items), num_shards)
    ]


def tf_writer(path):
    import tensorflow as tf

    return tf.io.TFRecordWriter(path)


def write_image_folder(root, images_by_domain, fmt="png"):
    """Writes root/<domain>/<index>.<fmt>; returns the paths relative to root, sorted."""
    paths = []
    for name, images in images_by_domain.items():
        os.makedirs(os.path.join(root, name), exist_ok=True)
        for i, image in enumerate(images):
            rel = f"{name}/{i:04d}.{fmt}"
            with open(os.path.join(root, rel), "wb") as f:
                f.write(encode(image, fmt))
            paths.append(rel)
    return sorted(paths)
