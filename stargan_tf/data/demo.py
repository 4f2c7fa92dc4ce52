"""The built-in demo dataset: coloured shapes, small enough to train StarGAN v2 on a laptop CPU.

    stargan-tf-demo --output_dir .demo/data          (or python -m stargan_tf.data.demo)
    stargan-tf-train --recipe=demo \\
        --train_data=.demo/data/train --val_data=.demo/data/val --workdir=.demo/run

Each image is one filled shape on a plain background:

    domain   the shape: circle, square or triangle (an upright isosceles triangle)
    style    the shape's colour (bright, saturated, any hue) and the background's colour
             (dark, any hue), drawn independently of the domain
    content  the shape's position and size

so a translation to another domain should change the shape and keep its place and size, and the
colours should follow the reference image (reference-guided) or vary with z (latent-guided).
Shapes are drawn at 4x the resolution and averaged down (antialiased edges).

Every image is a function of (seed, split, domain, index): the same arguments give the same
pixels, in any order and on any machine. The splits are written with
`stargan_tf.data.tfrecords.write_split` in the layout of `stargan_tf.data.format`, every domain
with the same number of images, plus OUT/demo.json (written last) describing what was generated;
running the generator again with the same arguments finds it and does nothing.
"""

import colorsys
import dataclasses
import json
import os
import tempfile
import time

import numpy as np
from PIL import Image, ImageDraw

from stargan_tf import files
from stargan_tf.errors import UserError

DOMAINS = ("circle", "square", "triangle")  # Sorted: a domain's label is its index here.
SPLITS = ("train", "val")
GENERATOR_VERSION = 1  # Bump whenever the pixels of a (seed, split, domain, index) change.
MARKER_FILE = "demo.json"
MARKER_FORMAT = "stargan_tf.demo"
# stargan_tf.data.format's FORMAT and METADATA_FILE, here without importing TensorFlow (see
# is_complete); tests/test_demo.py checks that they agree.
SPLIT_FORMAT = "stargan_tf.tfrecords"
SPLIT_METADATA_FILE = "dataset.json"
SUPERSAMPLE = 4  # Shapes are drawn at this multiple of img_size, then box-filtered down.

# Content: the half-extent of the shape's bounding box, as a fraction of the image side.
SIZE_RANGE = (0.2, 0.36)
MARGIN = 0.04  # Least gap between the shape and the image border, as a fraction of the side.
# Style, in HSV: the shape bright and saturated, the background dark, so they always contrast.
SHAPE_SATURATION = (0.65, 1.0)
SHAPE_VALUE = (0.8, 1.0)
BACKGROUND_SATURATION = (0.3, 0.9)
BACKGROUND_VALUE = (0.12, 0.42)


@dataclasses.dataclass(frozen=True)
class DemoSpec:
    """What a demo dataset is made of; the same spec gives the same files.

    Attributes:
      seed: seed of every image (and of the writer's shard shuffle).
      img_size: side of the images, in pixels (>= 16).
      train_per_domain: images per domain in the train split.
      val_per_domain: images per domain in the val split.
    """

    seed: int = 0
    img_size: int = 32
    train_per_domain: int = 1000
    val_per_domain: int = 100

    def __post_init__(self):
        problems = []
        if self.seed < 0:
            problems.append(f"seed={self.seed} must be >= 0")
        if self.img_size < 16:
            problems.append(f"img_size={self.img_size} must be >= 16")
        for name in ("train_per_domain", "val_per_domain"):
            if getattr(self, name) < 1:
                problems.append(f"{name}={getattr(self, name)} must be >= 1")
        if problems:
            raise UserError("Invalid demo dataset: " + "; ".join(problems) + ".")

    def per_domain(self, split):
        return {"train": self.train_per_domain, "val": self.val_per_domain}[split]

    def to_dict(self):
        return {
            "format": MARKER_FORMAT,
            "version": GENERATOR_VERSION,
            "domains": list(DOMAINS),
            **dataclasses.asdict(self),
        }


# Drawing.


def _hsv_to_rgb(h, s, v):
    """One HSV colour (each in [0, 1]) -> an (r, g, b) tuple of ints in [0, 255]."""
    return tuple(int(round(255 * c)) for c in colorsys.hsv_to_rgb(h, s, v))


def sample_params(rng, img_size):
    """Draws the content and style of one image.

    Returns:
      {"center": (x, y), "radius": r} in pixels (r: half-extent of the shape's bounding box),
      "shape_rgb" and "background_rgb": (r, g, b) ints.
    """
    radius = rng.uniform(*SIZE_RANGE) * img_size
    low, high = radius + MARGIN * img_size, img_size - radius - MARGIN * img_size
    center = (rng.uniform(low, high), rng.uniform(low, high))
    shape_rgb = _hsv_to_rgb(
        rng.uniform(), rng.uniform(*SHAPE_SATURATION), rng.uniform(*SHAPE_VALUE)
    )
    background_rgb = _hsv_to_rgb(
        rng.uniform(), rng.uniform(*BACKGROUND_SATURATION), rng.uniform(*BACKGROUND_VALUE)
    )
    return {
        "center": center,
        "radius": radius,
        "shape_rgb": shape_rgb,
        "background_rgb": background_rgb,
    }


def draw(domain, params, img_size):
    """Renders one image: uint8 [img_size, img_size, 3].

    Args:
      domain: index into DOMAINS.
      params: from `sample_params`.
      img_size: side in pixels.
    """
    k = SUPERSAMPLE
    big = Image.new("RGB", (img_size * k, img_size * k), params["background_rgb"])
    pen = ImageDraw.Draw(big)
    cx, cy = (c * k for c in params["center"])
    r = params["radius"] * k
    name = DOMAINS[domain]
    if name == "circle":
        pen.ellipse([cx - r, cy - r, cx + r, cy + r], fill=params["shape_rgb"])
    else:
        pen.polygon(_outline(name, cx, cy, r), fill=params["shape_rgb"])
    small = big.resize((img_size, img_size), Image.BOX)
    return np.asarray(small, np.uint8)


def _outline(name, cx, cy, r):
    """The polygon of a shape centred at (cx, cy) whose bounding box has half-extent r."""
    if name == "square":
        h = 0.9 * r  # Slightly inside the box, so it covers about the circle's area.
        return [(cx - h, cy - h), (cx + h, cy - h), (cx + h, cy + h), (cx - h, cy + h)]
    if name == "triangle":  # apex up, base at the bottom of the box
        return [(cx, cy - r), (cx + r, cy + r), (cx - r, cy + r)]
    if name == "cross":  # a plus sign: arms 0.8 r wide
        a, w = r, 0.4 * r
        return [
            (cx - w, cy - a),
            (cx + w, cy - a),
            (cx + w, cy - w),
            (cx + a, cy - w),
            (cx + a, cy + w),
            (cx + w, cy + w),
            (cx + w, cy + a),
            (cx - w, cy + a),
            (cx - w, cy + w),
            (cx - a, cy + w),
            (cx - a, cy - w),
            (cx - w, cy - w),
        ]
    raise ValueError(f"Unknown shape {name!r}.")


def _split_index(split):
    return SPLITS.index(split)


def render(seed, split, domain, index, img_size):
    """Image `index` of `domain` in `split`: a pure function of its arguments."""
    rng = np.random.default_rng([seed, _split_index(split), domain, index])
    return draw(domain, sample_params(rng, img_size), img_size)


def generate(spec, split):
    """All images of one split, in memory.

    Returns:
      (images uint8 [N, S, S, 3], labels int32 [N]), domain by domain, each in index order;
      N = len(DOMAINS) * spec.per_domain(split).
    """
    n = spec.per_domain(split)
    images = np.stack(
        [
            render(spec.seed, split, d, i, spec.img_size)
            for d in range(len(DOMAINS))
            for i in range(n)
        ]
    )  # [N, S, S, 3]
    labels = np.repeat(np.arange(len(DOMAINS), dtype=np.int32), n)  # [N]
    return images, labels


# Writing.


def read_marker(output_dir):
    """The spec dict of OUT/demo.json, or None when there is none (or it is unreadable)."""
    try:
        with open(os.path.join(output_dir, MARKER_FILE)) as f:
            marker = json.load(f)
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) and marker.get("format") == MARKER_FORMAT else None


def is_complete(output_dir, spec):
    """True when output_dir holds exactly this spec's dataset (marker, both splits, all shards).

    Reads the JSON files directly rather than through `stargan_tf.data.format`, so the check
    needs no TensorFlow and a second run of the generator returns at once.
    """
    if read_marker(output_dir) != spec.to_dict():
        return False
    for split in SPLITS:
        split_dir = os.path.join(output_dir, split)
        try:
            with open(os.path.join(split_dir, SPLIT_METADATA_FILE)) as f:
                meta = json.load(f)
        except (OSError, ValueError):
            return False
        expected = [spec.per_domain(split)] * len(DOMAINS)
        if (
            meta.get("format") != SPLIT_FORMAT
            or meta.get("domains") != list(DOMAINS)
            or meta.get("counts") != expected
            or meta.get("img_size") != spec.img_size
        ):
            return False
        if not all(
            os.path.isfile(os.path.join(split_dir, name)) for name in meta.get("shards", [])
        ):
            return False
    return True


def _check_output_dir(output_dir, overwrite):
    """output_dir may be written: absent, empty, a demo dataset, or overwrite is given."""
    if os.path.exists(output_dir) and not os.path.isdir(output_dir):
        raise UserError(f"{output_dir} is a file; the demo dataset needs a directory there.")
    if not os.path.isdir(output_dir) or overwrite or read_marker(output_dir) is not None:
        return
    for split in SPLITS:
        split_dir = os.path.join(output_dir, split)
        if os.path.isdir(split_dir) and os.listdir(split_dir):
            raise UserError(
                f"{split_dir} already holds files that are not a demo dataset; choose "
                "another --output_dir or pass --overwrite to replace them."
            )


def write_demo_dataset(output_dir, spec, overwrite=False, log=None):
    """Writes the demo dataset of `spec` to output_dir/train, output_dir/val and demo.json.

    Does nothing when output_dir already holds this spec's dataset. An earlier demo dataset of
    another spec there is replaced; other non-empty split directories only with overwrite.

    Args:
      output_dir: the dataset directory.
      spec: a DemoSpec.
      overwrite: replace split directories that hold something other than a demo dataset.
      log: called with progress messages (str), e.g. print; None = silent.

    Returns:
      True if it wrote the dataset, False if it was already there.
    """
    from stargan_tf.data import tfrecords

    log = log or (lambda message: None)
    if is_complete(output_dir, spec):
        log(
            f"{output_dir} already holds this demo dataset (seed {spec.seed}, {spec.img_size} px, "
            f"{spec.train_per_domain}/{spec.val_per_domain} images per domain); nothing to do."
        )
        return False
    _check_output_dir(output_dir, overwrite)
    os.makedirs(output_dir, exist_ok=True)
    marker = os.path.join(output_dir, MARKER_FILE)
    if os.path.exists(marker):
        os.remove(marker)  # The old dataset stops being one before its splits are replaced.
    for split in SPLITS:
        start = time.monotonic()
        n = spec.per_domain(split)
        # PNG files in a scratch folder, then the writer's own path from image folders to records:
        # 8-bit RGB PNGs of img_size are stored byte for byte.
        with tempfile.TemporaryDirectory(prefix=f"demo-{split}-") as root:
            images = {}
            for d, name in enumerate(DOMAINS):
                os.makedirs(os.path.join(root, name))
                images[name] = []
                for i in range(n):
                    path = f"{name}/{i:05d}.png"
                    image = render(spec.seed, split, d, i, spec.img_size)
                    Image.fromarray(image).save(os.path.join(root, path))
                    images[name].append(path)
            summary = tfrecords.write_split(
                root,
                images,
                os.path.join(output_dir, split),
                spec.img_size,
                min_size=spec.img_size,
                image_format="png",
                num_shards=2 if split == "train" else 1,
                seed=spec.seed,
                overwrite=True,
            )
        if summary.skipped or summary.counts != (n,) * len(DOMAINS):
            raise AssertionError(f"demo {split}: wrote {summary.counts}, skipped {summary.skipped}")
        log(
            f"{split}: {summary.num_examples} images ({n} per domain: {', '.join(DOMAINS)}) -> "
            f"{summary.split_dir} in {time.monotonic() - start:.1f} s"
        )
    # Last: the dataset is complete.
    files.write_text_atomic(marker, json.dumps(spec.to_dict(), indent=1) + "\n")
    return True


if __name__ == "__main__":
    # The command line lives in stargan_tf/demo.py (library modules read no flags); this keeps
    # `python -m stargan_tf.data.demo` working.
    import runpy

    runpy.run_module("stargan_tf.demo", run_name="__main__")
