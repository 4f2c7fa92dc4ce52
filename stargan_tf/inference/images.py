"""Image files in and out: finding, reading (resized to the model's size) and writing images."""

import os

import numpy as np
import tensorflow as tf
from PIL import Image

from stargan_tf.data import augment, pipeline
from stargan_tf.data import folders
from stargan_tf.data.folders import IMAGE_EXTENSIONS
from stargan_tf.errors import UserError


def to_uint8(x):
    """[-1, 1] float images -> uint8, as the official `denormalize` + save does."""
    x = (np.asarray(x, np.float32) + 1.0) * 127.5
    return np.clip(np.round(x), 0, 255).astype(np.uint8)


def tile(rows):
    """A list of rows, each [K, H, W, 3] uint8 -> one [rows*H, K*W, 3] image, 2 px gaps."""
    k = max(r.shape[0] for r in rows)
    h, w = rows[0].shape[1:3]
    gap = 2
    grid = np.full([len(rows) * (h + gap) - gap, k * (w + gap) - gap, 3], 255, np.uint8)
    for i, row in enumerate(rows):
        for j, img in enumerate(row):
            grid[i * (h + gap) : i * (h + gap) + h, j * (w + gap) : j * (w + gap) + w] = img
    return grid


def list_images(root):
    """Image files under root (recursively, sorted by path), as paths relative to root.

    Raises:
      UserError: root is not a directory or holds no images.
    """
    if not os.path.isdir(root):
        raise UserError(f"Input folder {root} does not exist.")
    paths = folders.image_files(root)
    if not paths:
        raise UserError(f"Input folder {root} holds no images ({', '.join(IMAGE_EXTENSIONS)}).")
    return paths


def folder_dataset(root, relpaths, img_size, batch_size):
    """Batches of the images `relpaths` under root, as `pipeline.eval_dataset` reads them.

    Returns:
      A `tf.data.Dataset` of (x float32 [B, S, S, 3] in [-1, 1], y int32 [B] (zeros),
      filename string [B] relative to root).
    """
    paths = [os.path.join(root, p) for p in relpaths]

    def read(shuffle_seed, domain=None):
        del shuffle_seed, domain  # One pass, in order, of one unlabelled "domain".
        ds = tf.data.Dataset.from_tensor_slices({"path": paths, "filename": list(relpaths)})
        return ds.map(
            lambda r: {
                "image": tf.io.read_file(r["path"]),
                "label": tf.constant(0, tf.int64),
                "filename": r["filename"],
            }
        )

    source = pipeline.Source(
        name=root, domains=("images",), counts=(len(paths),), img_size=None, read=read
    )
    return pipeline.eval_dataset(source, img_size, batch_size)


def read_image(path, img_size):
    """One image file -> float32 [img_size, img_size, 3] in [-1, 1], resized as the pipelines do.

    Raises:
      UserError: the file is missing or not a decodable image.
    """
    if not os.path.isfile(path):
        raise UserError(f"Image file {path} does not exist.")
    try:
        image = pipeline.decode(tf.io.read_file(path))
    except tf.errors.InvalidArgumentError as e:
        raise UserError(f"{path} is not a readable image: {e.message.splitlines()[0]}") from None
    return augment.normalize(augment.resize(image, img_size))


def as_model_images(images, img_size):
    """Images as the networks take them: float32 [N, S, S, 3] in [-1, 1].

    Args:
      images: [N, H, W, 3] or [H, W, 3]; uint8 (any size: resized, as the pipelines do) or float
        in [-1, 1] (already img_size).
      img_size: the model's image size.
    """
    x = tf.convert_to_tensor(images)
    if x.shape.rank == 3:
        x = x[None]
    if x.shape.rank != 4 or x.shape[-1] != 3:
        raise ValueError(f"Expected images [N, H, W, 3] or [H, W, 3], got {list(x.shape)}.")
    if x.dtype == tf.uint8:
        return tf.stack([augment.normalize(augment.resize(image, img_size)) for image in x])
    return tf.cast(x, tf.float32)


def save_image(path, image):
    """Writes a uint8 [H, W, 3] image; the format follows the extension (.png, .jpg)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    options = {"quality": 95} if path.lower().endswith((".jpg", ".jpeg")) else {}
    Image.fromarray(np.asarray(image, np.uint8)).save(path, **options)
