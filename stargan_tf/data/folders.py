"""Plain image folders, `root/<domain>/**/*.{jpg,jpeg,png,webp}`, for sampling and evaluation.

Domains are the sorted names of root's sub-folders (as the official code and
stargan-tf-make-tfrecords have them); each domain's images are found recursively and sorted by
their path, so a folder always reads in the same order.
"""

import os

import tensorflow as tf

from stargan_tf.data import pipeline
from stargan_tf.data.source import Source
from stargan_tf.errors import UserError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp")  # Compared case-insensitively.


def image_files(directory):
    """Image files under directory (recursively, hidden files and folders skipped), as sorted
    paths relative to it."""
    paths = []
    for dirpath, dirnames, filenames in os.walk(directory, followlinks=True):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        paths += [
            os.path.relpath(os.path.join(dirpath, f), directory)
            for f in filenames
            if f.lower().endswith(IMAGE_EXTENSIONS) and not f.startswith(".")
        ]
    return sorted(paths)


def list_domain_images(root):
    """Lists a folder of domains.

    Args:
      root: a directory with one sub-folder of images per domain.

    Returns:
      (domains, items): domains the sorted sub-folder names; items [(path, label), ...], path
      joined to root, label the domain's index, sorted by domain then by path within it.

    Raises:
      UserError: root is not a directory, has no sub-folders, or a domain has no images.
    """
    if not os.path.isdir(root):
        raise UserError(f"Image folder {root} does not exist.")
    domains = sorted(
        d
        for d in os.listdir(root)
        if os.path.isdir(os.path.join(root, d)) and not d.startswith(".")
    )
    if not domains:
        raise UserError(f"{root} has no sub-folders: expected one folder of images per domain.")
    items = []
    for label, domain in enumerate(domains):
        paths = [os.path.join(root, domain, p) for p in image_files(os.path.join(root, domain))]
        if not paths:
            raise UserError(
                f"Domain folder {os.path.join(root, domain)} has no images "
                f"({', '.join(IMAGE_EXTENSIONS)})."
            )
        items += [(p, label) for p in paths]
    return domains, items


def image_folder_source(root):
    """A `Source` reading the files of an image folder, in `list_domain_images` order.

    Its records' filenames are paths relative to root. `train_dataset` accepts it too.
    """
    domains, items = list_domain_images(root)
    paths = [p for p, _ in items]
    labels = [label for _, label in items]
    rel = [os.path.relpath(p, root) for p in paths]
    counts = tuple(labels.count(d) for d in range(len(domains)))

    def read(shuffle_seed, domain=None):
        ds = tf.data.Dataset.from_tensor_slices(
            {"path": paths, "label": tf.constant(labels, tf.int64), "filename": rel}
        )
        if domain is not None:
            ds = ds.filter(lambda r: tf.equal(r["label"], domain))
        if shuffle_seed is not None:
            # A full shuffle of the names, before any file is read: no buffer of image bytes.
            ds = ds.shuffle(len(paths), seed=shuffle_seed, reshuffle_each_iteration=True)
        return ds.map(
            lambda r: {
                "image": tf.io.read_file(r["path"]),
                "label": r["label"],
                "filename": r["filename"],
            }
        )

    return Source(
        name=root,
        domains=tuple(domains),
        counts=counts,
        img_size=None,
        read=read,
        shuffles_records=True,
    )


def image_folder_dataset(root, img_size, batch_size):
    """Every image of a folder once, in `list_domain_images` order, as `pipeline.eval_dataset`.

    Args:
      root: `root/<domain>/**/*.{jpg,jpeg,png,webp}`.
      img_size: side of the output images; others are resized (bilinear, antialiased when
        shrinking).
      batch_size: images per batch; the last batch may be smaller.

    Returns:
      A `tf.data.Dataset` of (x float32 [B, S, S, 3] in [-1, 1], y int32 [B], filename string [B]),
      filename relative to root.
    """
    return pipeline.eval_dataset(image_folder_source(root), img_size, batch_size)
