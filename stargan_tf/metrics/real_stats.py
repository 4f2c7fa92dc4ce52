"""FID statistics of the real (training) images of a domain, cached per data, weights and size.

The official evaluation reads a target domain's training images with PIL (`convert("RGB")`),
resizes them to the model's img_size and then to 299 with PIL bilinear, and fits a Gaussian to
their Inception features. Those statistics depend only on the images, the Inception weights and
img_size, so they are computed once and kept in a cache file whose name holds a hash of all
three (the data's file list with sizes and modification times, the weights file's SHA-256).
"""

import hashlib
import io
import json
import os

import numpy as np
from absl import logging
from PIL import Image

from stargan_tf.data import folders
from stargan_tf.data import format as data_format
from stargan_tf.data import pipeline
from stargan_tf.metrics import frechet
from stargan_tf.metrics.inception import pil_resize

CACHE_VERSION = 1


def open_data(path):
    """A `pipeline.Source` of a TFRecord split directory, `tfds:` name or image folder
    (`root/<domain>/*.jpg`, the official layout)."""
    path = str(path)
    if path.startswith("tfds:") or os.path.isfile(os.path.join(path, data_format.METADATA_FILE)):
        return pipeline.open_source(path)
    return folders.image_folder_source(path)


def _files_signature(directory):
    return [
        (rel, st.st_size, st.st_mtime_ns)
        for rel in folders.image_files(directory)
        for st in [os.stat(os.path.join(directory, rel))]
    ]


def data_signature(path, domain):
    """What identifies a domain's images: its files with sizes and mtimes (an image folder), the
    split's metadata and shard files (a TFRecord split), or the name (tfds)."""
    path = str(path)
    if path.startswith("tfds:"):
        return {"tfds": path, "domain": domain}
    if os.path.isfile(os.path.join(path, data_format.METADATA_FILE)):
        with open(os.path.join(path, data_format.METADATA_FILE)) as f:
            meta = f.read()
        shards = sorted(
            (name, os.stat(os.path.join(path, name)).st_size)
            for name in os.listdir(path)
            if name != data_format.METADATA_FILE
        )
        return {"split": os.path.abspath(path), "meta": meta, "shards": shards, "domain": domain}
    return {
        "folder": os.path.abspath(os.path.join(path, domain)),
        "files": _files_signature(os.path.join(path, domain)),
    }


def cache_path(cache_dir, path, domain, extractor, img_size):
    """The cache file of a domain's statistics (see the module docstring)."""
    key = json.dumps(
        {
            "version": CACHE_VERSION,
            "data": data_signature(path, domain),
            "inception": extractor.variant,
            "weights_sha256": extractor.weights_sha256,
            "img_size": img_size,
        },
        sort_keys=True,
    )
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return os.path.join(cache_dir, f"{domain}-{extractor.variant}-{img_size}px-{digest}.npz")


def real_images(source, domain_id, img_size, batch_size):
    """Batches of one domain's images as the official FID loader makes them before the 299
    resize: PIL-decoded RGB, PIL-bilinear resized to img_size square; uint8 [B, S, S, 3]."""
    batch = []
    for record in source.read(None, domain_id).as_numpy_iterator():
        image = Image.open(io.BytesIO(record["image"])).convert("RGB")
        batch.append(pil_resize(np.asarray(image), img_size))
        if len(batch) == batch_size:
            yield np.stack(batch)
            batch = []
    if batch:
        yield np.stack(batch)


def real_statistics(path, domain, extractor, img_size, batch_size=32, cache_dir=None, source=None):
    """(mu, sigma) of the Inception features of a domain's real images, from the cache if there.

    Args:
      path: the data (see `open_data`).
      domain: the domain's name.
      extractor: an `inception.InceptionExtractor`.
      img_size: the model's image size (the images' first resize).
      batch_size: images per Inception call.
      cache_dir: where to cache the statistics; None = no cache.
      source: the opened `path`, when the caller has it.
    """
    cache = cache_dir and cache_path(cache_dir, path, domain, extractor, img_size)
    if cache and os.path.isfile(cache):
        with np.load(cache) as f:
            logging.info("FID statistics of %s/%s from the cache %s.", path, domain, cache)
            return f["mu"], f["sigma"]
    source = source or open_data(path)
    domain_id = source.domains.index(domain)
    features = np.concatenate(
        [
            extractor.features(images)
            for images in real_images(source, domain_id, img_size, batch_size)
        ]
    )
    mu, sigma = frechet.statistics(features)
    if cache:
        os.makedirs(cache_dir, exist_ok=True)
        tmp = f"{cache}.{os.getpid()}.tmp.npz"
        np.savez(tmp, mu=mu, sigma=sigma, count=len(features))
        os.replace(tmp, cache)  # Readers never see half a file.
        logging.info(
            "FID statistics of %s/%s (%d images) cached in %s.", path, domain, len(features), cache
        )
    return mu, sigma
