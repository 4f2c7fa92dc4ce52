"""The web demo's logic, without the web page: finding and loading the model, reading uploaded
images, translating. `stargan_tf/app.py` lays these out as a Gradio page; tests call them directly.

A model is a model directory (a training workdir or a converted official checkpoint: its EMA
networks, as `stargan-tf-translate` loads them) or a SavedModel written by `stargan-tf-export`
(its version directory, or the export base, whose highest version is used). Uploaded images are
decoded as the translate command decodes them (grayscale expanded to RGB, alpha dropped, resized
to the model's size as the data pipelines do), so the page shows what the command writes.

Every check of user input raises `UserError` with a message for the page; `safely` turns any
other exception into a one-line message as well, so that the page never shows a stack trace.
"""

import dataclasses
import os
import random

import numpy as np
from absl import logging
from PIL import Image

from stargan_tf.errors import UserError, describe

# A 64-megapixel photo (8000 x 8000) decodes to 192 MB of uint8: the largest upload read; the
# model sees it at img_size anyway.
MAX_PIXELS = 64_000_000
MAX_STYLES = 8  # The most styles of one "row of styles" request.
MAX_EXAMPLES = 30  # Example images listed under the source upload.
EXAMPLES_SUBDIR = "examples"  # <model dir>/examples/: example source images shipped with a model.
SEED_RANGE = (0, 2**63 - 1)  # The exported signatures take int64 seeds.
# The formats TensorFlow's decoder reads (stargan_tf.data.pipeline.decode), as PIL names them.
READABLE_FORMATS = {"JPEG": "JPEG", "PNG": "PNG", "GIF": "GIF", "BMP": "BMP", "WEBP": "WebP"}
_GRAYSCALE_MODES = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F")
_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")

MODEL_DIR, SAVED_MODEL = "model directory", "SavedModel"


def find_model(path):
    """What a --checkpoint path holds, without loading TensorFlow.

    Returns:
      (kind, path): kind is MODEL_DIR or SAVED_MODEL; for an export base (TF Serving's layout,
      `BASE/<version>/saved_model.pb`) the path of its highest version.

    Raises:
      UserError: the path is missing or holds neither kind of model.
    """
    from stargan_tf.model_dir import CONFIG_FILE

    if not os.path.isdir(path):
        raise UserError(f"--checkpoint={path} is not a directory.")
    if os.path.isfile(os.path.join(path, CONFIG_FILE)):
        return MODEL_DIR, path
    if os.path.isfile(os.path.join(path, "saved_model.pb")):
        return SAVED_MODEL, path
    versions = [
        int(name) for name in os.listdir(path)
        if name.isdigit() and os.path.isfile(os.path.join(path, name, "saved_model.pb"))
    ]  # fmt: skip
    if versions:
        return SAVED_MODEL, os.path.join(path, str(max(versions)))
    raise UserError(
        f"--checkpoint={path} is not a model: it holds neither {CONFIG_FILE} (a model directory: "
        "a training workdir or stargan-tf-convert's output) nor saved_model.pb "
        "(stargan-tf-export's output, or its base directory of versions)."
    )


def find_examples(model_path, examples_dir=None):
    """Example source images: those under `examples_dir` when given, else under the model's
    `examples/` folder when it has one (recursively, sorted, at most MAX_EXAMPLES).

    Raises:
      UserError: examples_dir is not a folder of images.
    """
    from stargan_tf.data import folders

    if examples_dir:
        if not os.path.isdir(examples_dir):
            raise UserError(f"--examples={examples_dir} is not a directory.")
        root = examples_dir
    else:
        root = os.path.join(model_path, EXAMPLES_SUBDIR)
        if not os.path.isdir(root):
            return []
    paths = [os.path.join(root, p) for p in folders.image_files(root)][:MAX_EXAMPLES]
    if examples_dir and not paths:
        raise UserError(f"--examples={examples_dir} holds no images.")
    return paths


@dataclasses.dataclass(frozen=True)
class Upload:
    """An uploaded image, decoded as the translate command decodes it.

    Attributes:
      image: uint8 [H, W, 3].
      note: what was changed to read it (grayscale or alpha channel), for the page; or None.
    """

    image: np.ndarray
    note: str | None = None


def read_upload(path, what="source image"):
    """Reads an uploaded image file for translation.

    Args:
      path: the uploaded file (None: nothing uploaded).
      what: how the page names it ("source image", "reference image").

    Returns:
      An `Upload`.

    Raises:
      UserError: nothing uploaded, not an image, an image format TensorFlow does not read, or
        more than MAX_PIXELS pixels.
    """
    if not path:
        raise UserError(f"Upload a {what} first (or pick an example).")
    name = os.path.basename(path)
    try:
        with Image.open(path) as im:  # reads the header only: size and mode, no pixels yet
            width, height, mode, fmt = im.width, im.height, im.mode, im.format
            transparency = "transparency" in im.info
    except Image.DecompressionBombError:
        raise UserError(_too_large(what, name)) from None
    except (OSError, ValueError, SyntaxError):
        raise UserError(
            f"The {what} {name} is not an image: upload a JPEG, PNG, GIF, BMP or WebP file."
        ) from None
    if fmt not in READABLE_FORMATS:
        raise UserError(
            f"The {what} {name} is a {fmt} image: upload it as JPEG or PNG (the model reads "
            f"{', '.join(READABLE_FORMATS.values())})."
        )
    if width * height > MAX_PIXELS:
        raise UserError(_too_large(what, name, width, height))
    import tensorflow as tf

    from stargan_tf.data import pipeline

    try:
        image = pipeline.decode(tf.io.read_file(path)).numpy()  # [H, W, 3] uint8
    except tf.errors.OpError as e:
        raise UserError(f"The {what} {name} could not be decoded: {describe(e)}") from None
    note = None
    if mode in _GRAYSCALE_MODES:
        note = f"The {what} is grayscale: its gray level is used for all three colour channels."
    if mode in _ALPHA_MODES or (mode == "P" and transparency):
        note = (
            f"The {what} has an alpha channel: it is dropped, as the translate command drops it "
            "(transparent areas show the colours stored beneath them)."
        )
    return Upload(image, note)


def _too_large(what, name, width=None, height=None):
    size = f" is {width}×{height} pixels ({width * height / 1e6:.0f} MP)" if width else " is huge"
    return (
        f"The {what} {name}{size}: the limit is {MAX_PIXELS / 1e6:.0f} MP; downscale it first "
        "(the model sees it at its own size anyway)."
    )


def check_seed(seed):
    """The seed box's value as an int, or UserError."""
    if seed is None or seed == "":
        raise UserError("Enter a seed (a whole number), or press New style.")
    try:
        # Ints as they are (a float holds 53 bits); the page's number box may send 5.0.
        value = int(seed) if isinstance(seed, (int, np.integer, str)) else float(seed)
    except (TypeError, ValueError):
        raise UserError(f"The seed {seed!r} is not a whole number.") from None
    if not (np.isfinite(value) and value == int(value) and SEED_RANGE[0] <= value <= SEED_RANGE[1]):
        raise UserError(f"The seed {seed!r} must be a whole number from 0 to 2^63 - 1.")
    return int(value)


def check_psi(psi):
    """ψ as a float in [0, 1], or UserError."""
    try:
        value = float(psi)
    except (TypeError, ValueError):
        raise UserError(f"ψ={psi!r} is not a number.") from None
    if not 0.0 <= value <= 1.0:
        raise UserError(f"ψ={value:g} is outside [0, 1] (0: the domain's mean style; 1: as drawn).")
    return value


def check_num_styles(num_styles):
    """The number of styles of the row as an int in [1, MAX_STYLES], or UserError."""
    try:
        value = int(num_styles)
    except (TypeError, ValueError):
        raise UserError(f"The number of styles {num_styles!r} is not a whole number.") from None
    if not 1 <= value <= MAX_STYLES:
        raise UserError(f"The number of styles must be from 1 to {MAX_STYLES}; got {value}.")
    return value


def new_seed(rng=random):
    """A fresh seed for the "new style" button (31 bits: easy to read and to type back)."""
    return rng.randrange(2**31)


class ModelDirTranslator:
    """Translation with the networks of a model directory (`stargan_tf.translate`)."""

    def __init__(self, networks, source):
        self.networks = networks
        config = networks.config
        self.domain_names = tuple(config.domain_names)
        self.img_size = config.img_size
        self.source = source
        self.supports_psi = True  # `translate(..., psi=)`

    def _x_real(self, image):
        from stargan_tf.inference.images import as_model_images

        return as_model_images(image, self.img_size)  # [1, S, S, 3] in [-1, 1]

    def translate_latent(self, image, domain, seeds, psi=1.0):
        """uint8 [len(seeds), S, S, 3]: the image in `domain`, in the style of each seed."""
        from stargan_tf.inference import translation
        from stargan_tf.inference.images import to_uint8

        x_real = self._x_real(image)
        outs = [translation.translate(self.networks, x_real, domain, seed=s, psi=psi)
                for s in seeds]  # fmt: skip
        return to_uint8(np.concatenate(outs))

    def translate_reference(self, image, reference, domain):
        """uint8 [S, S, 3]: the image in `domain`, in the style of the reference image."""
        from stargan_tf.inference import translation
        from stargan_tf.inference.images import to_uint8

        x_fake = translation.translate(
            self.networks, self._x_real(image), domain, reference=self._x_real(reference)
        )
        return to_uint8(x_fake)[0]


class SavedModelTranslator:
    """Translation with a SavedModel of `stargan-tf-export`, through its float signatures.

    ψ needs a latent-guided signature with a `psi` input; an export without one (written before
    ψ existed) translates at ψ = 1 only (`supports_psi` is False).
    """

    def __init__(self, loaded, source):
        import tensorflow as tf

        self.loaded = loaded
        self.source = source
        sigs = loaded.signatures
        missing = {"model_info", "translate_latent", "translate_reference"} - set(sigs)
        if missing:
            raise UserError(
                f"{source} is a SavedModel but not one of stargan-tf-export: it has no "
                f"{', '.join(sorted(missing))} signature."
            )
        info = sigs["model_info"](dummy=tf.constant([0], tf.int64))
        self.domain_names = tuple(n.decode() for n in info["domain_names"].numpy())
        self.img_size = int(info["img_size"].numpy())
        self._psi_signature = None
        for fn in sigs.values():
            inputs = fn.structured_input_signature[1]
            if {"images", "target_domain", "seed", "psi"} <= set(inputs):
                self._psi_signature = (fn, inputs["psi"])
                break
        self.supports_psi = self._psi_signature is not None

    def _images(self, image, n):
        import tensorflow as tf

        from stargan_tf.inference.images import as_model_images

        return tf.repeat(as_model_images(image, self.img_size), n, axis=0)  # [n, S, S, 3]

    def _domain_ids(self, domain, n):
        import tensorflow as tf

        return tf.fill([n], tf.constant(self.domain_names.index(domain), tf.int64))  # [n]

    def translate_latent(self, image, domain, seeds, psi=1.0):
        """uint8 [len(seeds), S, S, 3]: the image in `domain`, in the style of each seed."""
        import tensorflow as tf

        from stargan_tf.inference.images import to_uint8

        n = len(seeds)
        inputs = {
            "images": self._images(image, n),
            "target_domain": self._domain_ids(domain, n),
            "seed": tf.constant(seeds, tf.int64),
        }
        if psi == 1.0 or not self.supports_psi:
            if psi != 1.0:
                raise UserError(f"This export has no ψ signature: ψ={psi:g} cannot be applied.")
            return to_uint8(self.loaded.signatures["translate_latent"](**inputs)["x_fake"])
        fn, spec = self._psi_signature
        psi_value = tf.fill([n] if spec.shape.rank else [], tf.constant(psi, spec.dtype))
        return to_uint8(fn(**inputs, psi=psi_value)["x_fake"])

    def translate_reference(self, image, reference, domain):
        """uint8 [S, S, 3]: the image in `domain`, in the style of the reference image."""
        from stargan_tf.inference.images import to_uint8

        out = self.loaded.signatures["translate_reference"](
            images=self._images(image, 1),
            reference_images=self._images(reference, 1),
            target_domain=self._domain_ids(domain, 1),
        )
        return to_uint8(out["x_fake"])[0]


def load_translator(path, step=None):
    """Loads the model at a --checkpoint path (see `find_model`) for the page.

    Returns:
      A `ModelDirTranslator` or a `SavedModelTranslator`.

    Raises:
      UserError: not a model, or a model that cannot run (e.g. w_hpf > 0 without its FAN).
    """
    kind, path = find_model(path)
    if kind == MODEL_DIR:
        from stargan_tf.inference import models

        networks, _ = models.load_inference_networks(path, step)
        return ModelDirTranslator(networks, path)
    if step is not None:
        raise UserError("--step applies to a model directory, not to a SavedModel.")
    import tensorflow as tf

    return SavedModelTranslator(tf.saved_model.load(path), path)


@dataclasses.dataclass
class Result:
    """What a translation request shows: the result image, the row of styles, a status line.

    Attributes:
      image: uint8 [S, S, 3] or None (the request failed: the page keeps what it shows).
      styles: [(uint8 [S, S, 3], caption)], the row of styles (latent-guided only).
      status: one line for the page's status box.
      ok: False when the request failed (status says why).
    """

    image: np.ndarray | None = None
    styles: list = dataclasses.field(default_factory=list)
    status: str = ""
    ok: bool = True


def safely(fn, *args, **kwargs):
    """Runs fn(*args, **kwargs) -> Result; a UserError becomes a failed Result with its message,
    and any other exception one with a one-line account (its traceback goes to the log only)."""
    try:
        return fn(*args, **kwargs)
    except UserError as e:
        return Result(status=str(e), ok=False)
    except Exception as e:  # The server keeps serving whatever went wrong with one request.
        logging.exception("The web demo's request failed.")
        return Result(status=f"Translation failed: {describe(e)}", ok=False)


class DemoLogic:
    """The page's actions on one loaded model (a `ModelDirTranslator` or `SavedModelTranslator`)."""

    def __init__(self, translator):
        self.translator = translator
        self.domain_names = translator.domain_names
        self.img_size = translator.img_size

    def _domain(self, domain):
        if domain not in self.domain_names:
            raise UserError(
                f"Choose a target domain: one of {', '.join(self.domain_names)} (got {domain!r})."
            )
        return domain

    def _notes(self, *uploads):
        return " ".join(u.note for u in uploads if u.note)

    def check_upload(self, path, what="source image"):
        """The status line for an upload (its size, what was changed to read it) -> Result."""
        upload = read_upload(path, what)
        h, w = upload.image.shape[:2]
        status = f"The {what}: {w}×{h} pixels, translated at {self.img_size}×{self.img_size}."
        return Result(status=" ".join(filter(None, [status, upload.note])))

    def latent(self, source, domain, seed, psi=1.0, num_styles=1):
        """Latent-guided: the source in `domain` in the style of `seed`, and a row of styles of
        seeds seed, seed + 1, ... (as `stargan-tf-sample`'s latent codes) -> Result."""
        domain = self._domain(domain)
        seed, psi, n = check_seed(seed), check_psi(psi), check_num_styles(num_styles)
        if psi != 1.0 and not self.translator.supports_psi:
            raise UserError(f"This export has no ψ input: ψ={psi:g} cannot be applied; set ψ = 1.")
        upload = read_upload(source)
        seeds = [min(seed + k, SEED_RANGE[1]) for k in range(n)]
        x_fake = self.translator.translate_latent(upload.image, domain, seeds, psi)
        styles = [(x_fake[k], f"seed {s}") for k, s in enumerate(seeds)]
        status = f"Translated into {domain} with the style of seed {seed} (ψ = {psi:g})."
        return Result(x_fake[0], styles, " ".join(filter(None, [status, self._notes(upload)])))

    def reference(self, source, reference, domain):
        """Reference-guided: the source in `domain` in the style of the reference -> Result."""
        domain = self._domain(domain)
        upload = read_upload(source)
        ref = read_upload(reference, "reference image")
        x_fake = self.translator.translate_reference(upload.image, ref.image, domain)
        status = f"Translated into {domain} with the style of the reference image."
        return Result(x_fake, [], " ".join(filter(None, [status, self._notes(upload, ref)])))
