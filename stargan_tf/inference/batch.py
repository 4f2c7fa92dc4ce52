"""Translating image files in one style: a folder (with a progress bar) or a single file."""

import os

import tensorflow as tf

from stargan_tf.errors import UserError
from stargan_tf.inference.images import folder_dataset, read_image, save_image
from stargan_tf.inference.progress import ProgressBar
from stargan_tf.inference.translation import generate
from stargan_tf.inference.images import to_uint8


def translate_file(networks, s_trg, input_path, output_path):
    """Translates one image file with the style s_trg [1, style_dim] and writes output_path."""
    x_real = read_image(input_path, networks.config.img_size)[None]  # [1, S, S, 3]
    x_fake = networks.generator(x_real, s_trg, masks=networks.masks(x_real))
    save_image(output_path, to_uint8(x_fake)[0])


def translate_folder(networks, s_trg, input_dir, relpaths, output_dir, batch_size, ext=".png"):
    """Translates the images `relpaths` under input_dir with the style s_trg [1, style_dim].

    Each output goes to `output_dir/<relpath without extension><ext>`; progress goes to stderr.

    Returns:
      The number of images written.

    Raises:
      UserError: an image could not be decoded.
    """
    outputs = [os.path.join(output_dir, os.path.splitext(p)[0] + ext) for p in relpaths]
    clashes = len(set(outputs)) < len(outputs)  # e.g. a.jpg and a.png in one folder
    if clashes:
        outputs = [os.path.join(output_dir, p + ext) for p in relpaths]
    bar = ProgressBar(len(relpaths), desc="translate ")
    done = 0
    batches = iter(folder_dataset(input_dir, relpaths, networks.config.img_size, batch_size))
    while True:
        try:
            x_real, _, _ = next(batches)
        except StopIteration:
            break
        except tf.errors.InvalidArgumentError as e:
            raise UserError(
                f"Could not read an image in {input_dir} (at or after {relpaths[done]}): "
                f"{e.message.splitlines()[0]}"
            ) from None
        n = x_real.shape[0]
        x_fake = generate(networks, x_real, tf.repeat(s_trg, n, axis=0))
        for i in range(n):
            save_image(outputs[done + i], x_fake[i])
        done += n
        bar.update(n)
    bar.close()
    return done
