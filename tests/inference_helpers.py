"""Tiny models and image folders for the sample, translate and export tests."""

import os

import keras
import numpy as np
from PIL import Image

import stargan_tf
from support import tiny

DOMAINS = ("cat", "dog", "wild")
# Wider than support.TINY: its translations are compared across runtimes and batchings.
TINY = tiny(
    style_dim=16, latent_dim=8, num_domains=3, max_conv_dim=64, dim_in=16, domain_names=DOMAINS
)


def make_model_dir(path, config=TINY, seed=0):
    """A model directory holding random EMA networks of `config`; returns (path, networks).

    The generator's last convolution is scaled down so that its outputs lie near [-1, 1], as a
    trained generator's do (a randomly initialised one reaches +-6): comparisons between eager and
    graph execution then meet absolute tolerances meant for images.
    """
    keras.utils.set_random_seed(seed)
    networks = stargan_tf.build_networks(config, discriminator=False)
    for weight in networks.generator.to_rgb_conv.weights:
        weight.assign(weight * 0.2)
    stargan_tf.save_networks(networks, str(path), step=7)
    return path, networks


def random_image(rng, height, width):
    """A smooth random uint8 [H, W, 3] image (JPEG keeps it close, unlike white noise)."""
    coarse = rng.integers(0, 256, [4, 4, 3], np.uint8)
    return np.asarray(Image.fromarray(coarse).resize((width, height), Image.BILINEAR))


def write_image(path, image):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(image).save(path, **({"quality": 95} if str(path).endswith(".jpg") else {}))


def write_domain_folder(root, per_domain, rng, domains=DOMAINS):
    """`root/<domain>/img<i>.{png,jpg}` of mixed sizes; returns the paths in listing order."""
    paths = []
    for domain in domains:
        for i in range(per_domain):
            path = os.path.join(root, domain, f"img{i}.{'jpg' if i % 2 else 'png'}")
            write_image(path, random_image(rng, 24 + 9 * i, 40 - 3 * i))
            paths.append(path)
    return paths
