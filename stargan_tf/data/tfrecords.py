"""Writing image folders (root/<domain>/**/*.jpg) as TFRecord splits in the layout of `format.py`.

Domains are the sorted names of root's sub-folders (as the official StarGAN v2 code:
`sorted(os.listdir(root))`, directories only; hidden ones such as `.ipynb_checkpoints` are left
out). Images are found recursively under each domain folder by extension (jpg, jpeg, png, webp, in
any case); other files and hidden files are ignored.

Each image becomes one 8-bit RGB img_size x img_size record (`prepare_image`):
  * a JPEG or PNG that already is 8-bit RGB, img_size x img_size, with no EXIF rotation and no
    transparency is kept byte-for-byte;
  * any other is decoded fully (a truncated file is refused, never half-decoded), turned upright by
    its EXIF orientation, converted to RGB (CMYK, grayscale, 16-bit, palette; an alpha channel or a
    transparent colour is composited over white), center-cropped to a square on its short side,
    resized once to img_size with Lanczos, and encoded as JPEG (quality 95 by default) or PNG;
  * a file that cannot be used (empty, truncated or corrupt, not an image, short side below
    min_size) is skipped with a reason, listed in the split's `skipped.txt`.

`write_split` writes one split: shards under temporary names, renamed when complete, and
`dataset.json` last, through a temporary file and `os.replace`, so a crash never leaves a
dataset.json pointing at half-written shards. Each shard holds the images of one domain (in a
seeded random order; `shard_domains` in dataset.json says which), so that the training
pipeline's stream of a domain reads that domain's shards only; a domain gets shards in
proportion to its images, at least one. The output does not depend on the worker count.

TensorFlow is imported only when a split is written, so that bad inputs fail fast.
"""

import collections
import concurrent.futures
import dataclasses
import io
import json
import math
import os
import random
import re
import sys
import time

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from stargan_tf.errors import UserError
from stargan_tf.files import fsync_path, write_text_atomic

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp")
# Only these decoders are ever run, whatever a file's name says (Pillow would otherwise try every
# format it knows, e.g. EPS through Ghostscript). "JPEG" also opens camera JPEGs that Pillow
# reports as format "MPO".
PILLOW_FORMATS = ("JPEG", "PNG", "WEBP")
IMAGE_FORMATS = ("jpeg", "png")
# Registers every Pillow plugin now rather than lazily inside Image.open, from many threads at once.
Image.init()
SKIPPED_FILE = "skipped.txt"

# `--num_shards auto` aims at shards of about 64 MiB, estimating a record's size from img_size.
TARGET_SHARD_BYTES = 64 << 20
BYTES_PER_PIXEL = {"jpeg": 0.5, "png": 2.0}
# Resizing and JPEG draft decoding stop reducing by whole factors this far above the target size;
# Pillow's documentation calls 3.0 indistinguishable from a full Lanczos resize in most cases.
REDUCING_GAP = 3.0
WHITE = (255, 255, 255)
EXIF_ORIENTATION = 0x0112  # the tag ImageOps.exif_transpose applies


# Finding images.


def _is_hidden(name):
    return name.startswith(".")


def _is_utf8(name):
    # On Linux, a file name that is not UTF-8 comes back from os.listdir with surrogate escapes.
    try:
        name.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def printable(name):
    """A file name that can be printed and written as UTF-8 (undecodable bytes as \\xNN)."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def list_domains(root):
    """The domain names of an image folder: its sub-folders, sorted (hidden ones left out)."""
    if not os.path.exists(root):
        raise UserError(f"Image folder {root} does not exist.")
    if not os.path.isdir(root):
        raise UserError(f"{root} is not a directory; give a folder of <domain>/ sub-folders.")
    domains = sorted(
        name
        for name in os.listdir(root)
        if not _is_hidden(name) and os.path.isdir(os.path.join(root, name))
    )
    if not domains:
        raise UserError(f"{root} has no domain sub-folders; expected {root}/<domain>/<images>.")
    bad = [printable(d) for d in domains if not _is_utf8(d)]
    if bad:
        raise UserError(f"Domain folder names of {root} must be UTF-8: rename {', '.join(bad)}.")
    return domains


def find_images(root):
    """Image files of each domain of `root`.

    Returns:
      {domain: [paths relative to root, with "/" separators, sorted]}, domains in sorted order.
      A domain without image files maps to an empty list.
    """
    images = {}
    for domain in list_domains(root):
        found = []
        for dirpath, dirnames, filenames in os.walk(os.path.join(root, domain)):
            dirnames[:] = [d for d in dirnames if not _is_hidden(d)]
            for name in filenames:
                if not _is_hidden(name) and name.lower().endswith(IMAGE_EXTENSIONS):
                    found.append(os.path.relpath(os.path.join(dirpath, name), root))
        images[domain] = sorted(path.replace(os.sep, "/") for path in found)
    return images


def check_same_domains(train_domains, val_domains, train_root, val_root):
    """The val split's domains must be train's (labels are indices into train's list)."""
    if list(train_domains) == list(val_domains):
        return
    missing = sorted(set(train_domains) - set(val_domains))
    extra = sorted(set(val_domains) - set(train_domains))
    parts = []
    if missing:
        parts.append(f"missing in val: {', '.join(missing)}")
    if extra:
        parts.append(f"not in train: {', '.join(extra)}")
    raise UserError(
        f"The val folder {val_root} has other domains than the train folder {train_root} "
        f"({'; '.join(parts)}); both need the same <domain>/ sub-folders."
    )


def check_no_empty_domains(images, root):
    empty = [domain for domain, paths in images.items() if not paths]
    if empty:
        raise UserError(
            f"Domain {', '.join(empty)} of {root} holds no images "
            f"({', '.join(ext.lstrip('.') for ext in IMAGE_EXTENSIONS)}); every domain needs some."
        )


# Preparing one image.


def _png_is_8bit_rgb(data):
    # IHDR comes first: 8-byte signature, length, "IHDR", width, height, bit depth, colour type.
    return len(data) > 25 and data[12:16] == b"IHDR" and data[24] == 8 and data[25] == 2


def _can_keep_bytes(img, data, img_size):
    """True for a JPEG or PNG that decodes to what we would write: 8-bit RGB, square, upright."""
    if img.size != (img_size, img_size) or img.mode != "RGB" or "transparency" in img.info:
        return False
    if img.getexif().get(EXIF_ORIENTATION, 1) != 1:
        return False
    if img.format == "JPEG":
        return True
    # Pillow opens 16-bit RGB PNGs as mode "RGB" too: read the bit depth from the header.
    return img.format == "PNG" and not getattr(img, "is_animated", False) and _png_is_8bit_rgb(data)


def _to_rgb(img):
    """Any decoded mode -> 8-bit RGB; transparency is composited over white."""
    if img.mode == "RGB" and "transparency" not in img.info:
        return img
    if img.mode.startswith("I"):
        # 16-bit grayscale ("I;16*", or "I" holding 16-bit values): Pillow's convert() clips
        # to 255 instead of scaling, which would turn most of the image white.
        gray = np.asarray(img).astype(np.float32) / 257.0
        return Image.fromarray(np.clip(np.rint(gray), 0, 255).astype(np.uint8), "L").convert("RGB")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info:
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, WHITE + (255,))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")  # CMYK, L, 1, P, YCbCr, ...


def _center_square(size):
    """The largest centered square box (left, upper, right, lower) of an image of `size`."""
    w, h = size
    s = min(w, h)
    left, top = (w - s) // 2, (h - s) // 2
    return (left, top, left + s, top + s)


def _encode(img, image_format, jpeg_quality):
    buf = io.BytesIO()
    if image_format == "jpeg":
        img.save(buf, "JPEG", quality=jpeg_quality)
    else:
        img.save(buf, "PNG")
    return buf.getvalue()


def _open_image(path):
    """(file bytes, the opened Pillow image, None), or (None, None, why it cannot be opened)."""
    # A truncated file must fail to load, not decode with a grey bottom: insist on Pillow's default
    # in case anything in this process changed it.
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        return None, None, f"unreadable: {e.strerror or e}"
    if not data:
        return None, None, "empty file"
    try:
        return data, Image.open(io.BytesIO(data), formats=PILLOW_FORMATS), None
    except UnidentifiedImageError:
        return None, None, "not a JPEG, PNG or WebP image"
    except Image.DecompressionBombError as e:
        return None, None, f"too large: {e}"
    except Exception as e:  # Pillow raises many types for malformed headers; any is a bad file.
        return None, None, f"corrupt: {type(e).__name__}: {e}"


def prepare_image(path, img_size, min_size=32, image_format="jpeg", jpeg_quality=95):
    """One image file -> the encoded bytes of its record, or the reason it is skipped.

    Args:
      path: an image file (JPEG, PNG or WebP, recognised by content).
      img_size: side of the square output, in pixels.
      min_size: images whose short side (in pixels, before resizing) is below this are skipped.
      image_format: "jpeg" or "png", the encoding of converted images. A JPEG or PNG that needs no
        conversion keeps its original bytes whichever this is.
      jpeg_quality: JPEG quality (1-100) of converted images.

    Returns:
      (bytes, None) for a usable image: 8-bit RGB, img_size x img_size, upright; or
      (None, reason) for a file to skip.
    """
    data, img, reason = _open_image(path)
    if img is None:
        return None, reason
    with img:
        w, h = img.size
        if min(w, h) < min_size:
            return None, f"too small: {w}x{h}, short side {min(w, h)} < min_size {min_size}"
        try:
            if img.format in ("JPEG", "MPO") and min(w, h) > REDUCING_GAP * img_size:
                # Decode big JPEGs at 1/2, 1/4 or 1/8 scale (a DCT-domain reduction), still at
                # least REDUCING_GAP x img_size on the short side: the Lanczos resize below does
                # the rest. This is what Image.thumbnail does.
                target = int(REDUCING_GAP * img_size)
                img.draft(None, (target, target))
            img.load()
            if _can_keep_bytes(img, data, img_size):
                return data, None
            img = ImageOps.exif_transpose(img)
            img = _to_rgb(img)
            # Crop first: resize(box=...) would let the filter reach past the square's edges.
            img = img.crop(_center_square(img.size))
            img = img.resize((img_size, img_size), Image.LANCZOS, reducing_gap=REDUCING_GAP)
            return _encode(img, image_format, jpeg_quality), None
        except Image.DecompressionBombError as e:
            return None, f"too large: {e}"
        except OSError as e:
            if "truncated" in str(e):
                return None, f"truncated: {e}"
            return None, f"corrupt: {e}"
        except Exception as e:  # A decoder may raise anything on hostile data; skip, never crash.
            return None, f"corrupt: {type(e).__name__}: {e}"


# Writing a split.


@dataclasses.dataclass(frozen=True)
class SplitSummary:
    """What write_split wrote.

    Attributes:
      split_dir: the split directory (dataset.json, shards, skipped.txt).
      domains: domain names; a record's label indexes this list.
      counts: records per domain.
      shards: shard file names, in order.
      skipped: [(path relative to the image folder, reason)], sorted by path.
      seconds: wall-clock time of preparing and writing.
    """

    split_dir: str
    domains: tuple
    counts: tuple
    shards: tuple
    skipped: tuple
    seconds: float

    @property
    def num_examples(self):
        return sum(self.counts)

    @property
    def images_per_second(self):
        return (self.num_examples + len(self.skipped)) / max(self.seconds, 1e-9)


def plan_shards(counts, num_shards):
    """The domain of each shard: about `num_shards` shards (at least one per domain), split
    between the domains in proportion to their image counts (largest remainders), in domain
    order. Returns a list of domain ids, one per shard."""
    total = sum(counts)
    num_shards = max(num_shards, len(counts))
    exact = [num_shards * c / total for c in counts]
    shares = [max(1, min(c, int(e))) for c, e in zip(counts, exact)]
    by_remainder = sorted(range(len(counts)), key=lambda d: exact[d] - int(exact[d]), reverse=True)
    for d in by_remainder:
        if sum(shares) >= num_shards:
            break
        if shares[d] < counts[d]:
            shares[d] += 1
    return [d for d, n in enumerate(shares) for _ in range(n)]


def auto_num_shards(num_images, img_size, image_format="jpeg"):
    """Shards of about TARGET_SHARD_BYTES, from an estimate of the encoded size of an image."""
    estimate = num_images * img_size * img_size * BYTES_PER_PIXEL[image_format]
    return max(1, min(num_images, math.ceil(estimate / TARGET_SHARD_BYTES)))


_OWN_FILE = re.compile(
    r"^(dataset\.json|skipped\.txt|\.?data-\d+-of-\d+\.tfrecord(\.tmp)?|"
    r"\.dataset\.json\.tmp)$"
)


def check_split_dir(split_dir, overwrite=False):
    """A split directory can be written: it is absent or empty, or overwrite is given."""
    if os.path.exists(split_dir) and not os.path.isdir(split_dir):
        raise UserError(f"{split_dir} is a file; the output needs a directory there.")
    if os.path.isdir(split_dir) and os.listdir(split_dir) and not overwrite:
        raise UserError(f"{split_dir} already holds files; pass --overwrite to replace them.")


def prepare_split_dir(split_dir, overwrite=False):
    """Creates the split directory; an existing one must be empty, or is cleared with overwrite.

    With overwrite only this tool's files are removed (dataset.json first, so the old dataset stops
    being one before any of its shards goes); other files are left alone.
    """
    check_split_dir(split_dir, overwrite)
    os.makedirs(split_dir, exist_ok=True)
    present = os.listdir(split_dir)
    own = sorted(
        (name for name in present if _OWN_FILE.match(name)), key=lambda name: name != "dataset.json"
    )
    for name in own:
        os.remove(os.path.join(split_dir, name))


class _ShardWriter:
    """Writes shard after shard under a temporary name; each is renamed when complete."""

    def __init__(self, split_dir, num_shards):
        import tensorflow as tf

        from stargan_tf.data import format as fmt

        self._tf = tf
        self._dir = split_dir
        self.names = [
            fmt.SHARD_PATTERN.format(index=i, count=num_shards) for i in range(num_shards)
        ]
        self._index = -1
        self._writer = None
        self.created = []  # paths this writer made, temporary or final, removed on failure

    def _tmp(self, index):
        return os.path.join(self._dir, f".{self.names[index]}.tmp")

    def _close(self):
        if self._writer is not None:
            self._writer.close()
            fsync_path(self._tmp(self._index))  # On disk before dataset.json can name it.
            final = os.path.join(self._dir, self.names[self._index])
            os.replace(self._tmp(self._index), final)
            self.created.append(final)
            self._writer = None

    def advance_to(self, index):
        """Completes every shard before `index` (empty ones too) and opens shard `index`."""
        while self._index < index:
            self._close()
            self._index += 1
            self.created.append(self._tmp(self._index))
            self._writer = self._tf.io.TFRecordWriter(self._tmp(self._index))

    def write(self, record):
        self._writer.write(record)

    def finish(self):
        self.advance_to(len(self.names) - 1)
        self._close()

    def abort(self):
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        for path in self.created:
            if os.path.exists(path):
                os.remove(path)


def _prepared_in_order(paths, prepare, workers):
    """Yields prepare(path) in the order of `paths`, `workers` at a time.

    Threads suffice: Pillow releases the GIL while decoding, resizing and encoding (2 threads
    measured 1.9x one). At most 4 x workers results wait in memory.
    """
    if workers <= 1:
        yield from map(prepare, paths)
        return
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        pending = collections.deque()
        try:
            for path in paths:
                pending.append(pool.submit(prepare, path))
                if len(pending) >= 4 * workers:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()


def _write_json_atomically(path, obj):
    # One key per line, each value on its line: readable, and diffable between datasets.
    text = "{\n" + ",\n".join(f" {json.dumps(k)}: {json.dumps(v)}" for k, v in obj.items())
    write_text_atomic(path, text + "\n}\n")


def write_skipped(path, skipped):
    """skipped.txt: one line per skipped file, `<path relative to the image folder>\\t<reason>`."""
    with open(path, "w") as f:
        for name, reason in skipped:
            f.write(f"{name}\t{reason}\n")


def write_split(
    root,
    images,
    split_dir,
    img_size,
    min_size=32,
    image_format="jpeg",
    jpeg_quality=95,
    num_shards=None,
    workers=None,
    seed=0,
    overwrite=False,
    progress=None,
):
    """Writes the images of one split as TFRecord shards and dataset.json.

    Args:
      root: the split's image folder; record file names are relative to it.
      images: {domain: [paths relative to root]}, as from find_images(root); the dict's order gives
        the labels (0, 1, ...), so pass train's domains for the val split.
      split_dir: the directory to write (created; must be empty unless overwrite).
      img_size, min_size, image_format, jpeg_quality: as for prepare_image.
      num_shards: number of shard files; None = auto_num_shards().
      workers: threads preparing images; None = os.cpu_count().
      seed: seed of the permutation that spreads records (and so domains) over the shards.
      overwrite: replace this tool's files in a non-empty split_dir.
      progress: called as progress(done, total) after each image, e.g. a ProgressLine.

    Returns:
      A SplitSummary.

    Raises:
      UserError: a domain has no image files, or no usable ones; split_dir is not writable as such.
    """
    if image_format not in IMAGE_FORMATS:
        raise ValueError(f"image_format must be one of {IMAGE_FORMATS}, not {image_format!r}.")
    check_no_empty_domains(images, root)
    plan = _plan_split(images, img_size, image_format, num_shards, seed)
    prepare_split_dir(split_dir, overwrite)
    start = time.monotonic()
    if progress:
        progress(0, len(plan.items))

    def prepare(item):
        return prepare_image(
            os.path.join(root, item[0]), img_size, min_size, image_format, jpeg_quality
        )

    counts, skipped, names = _write_shards(
        root, plan, split_dir, prepare, workers or os.cpu_count() or 1, progress
    )
    _write_metadata(split_dir, img_size, plan, counts, skipped, names)
    return SplitSummary(
        split_dir=split_dir,
        domains=tuple(plan.domains),
        counts=tuple(counts),
        shards=tuple(names),
        skipped=tuple(skipped),
        seconds=time.monotonic() - start,
    )


@dataclasses.dataclass(frozen=True)
class _SplitPlan:
    """What goes where: the items (path, label) in writing order and each one's shard."""

    domains: list
    items: list
    item_shard: list
    shard_domains: list


def _plan_split(images, img_size, image_format, num_shards, seed):
    """Orders a split's images (shuffled within each domain) and assigns them to shards: each
    domain's images fill contiguous shards of their own (`plan_shards`)."""
    domains = list(images)
    items = [(path, label) for label, domain in enumerate(domains) for path in images[domain]]
    random.Random(seed).shuffle(items)
    items.sort(key=lambda item: item[1])  # Stable: each domain's images stay shuffled.
    num_shards = min(num_shards or auto_num_shards(len(items), img_size, image_format), len(items))
    shard_domains = plan_shards([len(images[d]) for d in domains], num_shards)
    first_shard = [shard_domains.index(d) for d in range(len(domains))]
    per_domain = [shard_domains.count(d) for d in range(len(domains))]
    position = [0] * len(domains)  # Index of each item within its domain.
    item_shard = []
    for _, label in items:
        n = len(images[domains[label]])
        item_shard.append(first_shard[label] + position[label] * per_domain[label] // n)
        position[label] += 1
    return _SplitPlan(domains, items, item_shard, shard_domains)


def _write_shards(root, plan, split_dir, prepare, workers, progress):
    """Prepares and writes every planned image; returns (counts per domain, skipped, shard
    names). Nothing of this split's shards is left behind on an error."""
    from stargan_tf.data import format as fmt

    counts = [0] * len(plan.domains)
    skipped = []
    writer = _ShardWriter(split_dir, len(plan.shard_domains))
    results = _prepared_in_order(plan.items, prepare, workers)
    try:
        for i, ((path, label), (data, reason)) in enumerate(zip(plan.items, results)):
            # Contiguous runs of the list: one shard open at a time, none skipped.
            writer.advance_to(plan.item_shard[i])
            if data is not None and not _is_utf8(path):
                data, reason = None, "file name is not UTF-8 (records store names as UTF-8)"
            if data is None:
                skipped.append((printable(path), " ".join(reason.split())))
            else:
                writer.write(fmt.make_example(data, label, path))
                counts[label] += 1
            if progress:
                progress(i + 1, len(plan.items))
        _check_usable(root, plan.domains, counts, skipped)
        writer.finish()
    except BaseException:
        writer.abort()
        raise
    finally:
        results.close()  # Stops the worker threads' queue on an error.
    return counts, sorted(skipped), writer.names


def _check_usable(root, domains, counts, skipped):
    empty = [d for d, count in zip(domains, counts) if count == 0]
    if empty:
        first = next(f"{p}: {r}" for p, r in sorted(skipped) if p.startswith(empty[0] + "/"))
        raise UserError(
            f"Domain {', '.join(empty)} of {root} has no usable images: every file was skipped "
            f"(e.g. {first})."
        )


def _write_metadata(split_dir, img_size, plan, counts, skipped, names):
    """skipped.txt, then dataset.json: last, and atomically, so that dataset.json exists only
    once every shard it names is complete."""
    from stargan_tf.data import format as fmt

    write_skipped(os.path.join(split_dir, SKIPPED_FILE), skipped)
    meta = {
        "format": fmt.FORMAT,
        "version": fmt.VERSION,
        "img_size": img_size,
        "domains": plan.domains,
        "counts": counts,
        "num_examples": sum(counts),
        "shards": names,
        "shard_bytes": [os.path.getsize(os.path.join(split_dir, n)) for n in names],
        "shard_domains": plan.shard_domains,
    }
    _write_json_atomically(os.path.join(split_dir, fmt.METADATA_FILE), meta)


# Reporting.


def _clock(seconds):
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60}:{rest % 60:02d}"


class ProgressLine:
    """A progress line on a stream: `train: 120/200 images  385 img/s  ETA 0:01`.

    On a terminal it is redrawn in place (`\\r`) at most `interval` seconds apart; elsewhere (a log
    file, a pipe) only the final line is printed.
    """

    def __init__(self, label, stream=None, interval=0.1):
        self.label = label
        self.stream = stream or sys.stderr
        self.interactive = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.interval = interval
        self.start = time.monotonic()
        self.last = -math.inf

    def __call__(self, done, total):
        now = time.monotonic()
        if done == 0:  # The work starts now (TensorFlow may have taken seconds to load).
            self.start = now
            return
        if done < total and (not self.interactive or now - self.last < self.interval):
            return
        self.last = now
        rate = done / max(now - self.start, 1e-9)
        eta = (total - done) / rate if rate > 0 else 0.0
        line = f"{self.label}: {done}/{total} images  {rate:.0f} img/s  ETA {_clock(eta)}"
        end = "\n" if done >= total else ""
        if self.interactive:
            self.stream.write(f"\r{line}\x1b[K{end}")
        else:
            self.stream.write(f"{line}{end}")
        self.stream.flush()


def _plural(n, noun):
    return f"{n} {noun}{'' if n == 1 else 's'}"


def format_summary(name, summary):
    """A human-readable report of a split: images per domain, then every skipped file and why."""
    lines = [
        f"{name}: {summary.num_examples} images in {len(summary.domains)} domains -> "
        f"{summary.split_dir} ({_plural(len(summary.shards), 'shard')}), "
        f"{len(summary.skipped)} skipped, "
        f"{summary.seconds:.1f} s ({summary.images_per_second:.0f} images/s)"
    ]
    width = max(len(domain) for domain in summary.domains)
    for domain, count in zip(summary.domains, summary.counts):
        lines.append(f"  {domain:<{width}}  {count}")
    if summary.skipped:
        lines.append(
            f"{name}: skipped {_plural(len(summary.skipped), 'file')} "
            f"(also in {os.path.join(summary.split_dir, SKIPPED_FILE)}):"
        )
        lines.extend(f"  {path}: {reason}" for path, reason in summary.skipped)
    return "\n".join(lines)
