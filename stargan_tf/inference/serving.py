"""The SavedModel for TF Serving: the networks behind float and bytes signatures.

Signatures (float images are NHWC in [-1, 1] at the model's img_size; `target_domain` and `seed`
are int64, one per image; image bytes are JPEG/PNG/GIF/BMP/WebP of any size):

  translate_reference(images, reference_images, target_domain) -> x_fake   (serving_default)
  translate_latent(images, target_domain, seed)                 -> x_fake
  translate_style(images, style)                                -> x_fake
  style_from_reference(reference_images, target_domain)         -> s_trg
  style_from_latent(target_domain, seed)                        -> s_trg
  translate_reference_bytes(image_bytes, reference_bytes, target_domain) -> x_fake_bytes
  translate_latent_bytes(image_bytes, target_domain, seed)      -> x_fake_bytes
  translate_style_bytes(image_bytes, style)                     -> x_fake_bytes
  style_from_reference_bytes(reference_bytes, target_domain)    -> s_trg
  translate_latent_psi(images, target_domain, seed, psi)       -> x_fake
  translate_latent_psi_bytes(image_bytes, target_domain, seed, psi) -> x_fake_bytes
  style_from_latent_psi(target_domain, seed, psi)               -> s_trg
  mean_style(target_domain)                                     -> s_avg
  domain_ids(domain_names)                                      -> target_domain
  model_info(dummy)                            -> domain_names, img_size, style_dim, latent_dim

The `*_psi` signatures truncate the latent-guided style toward the target domain's mean style,
s_trg = s_avg + psi · (s_trg − s_avg) (`psi` float32, one per image, >= 0; 1 = the untruncated
signature's style): the mean styles (`mean_style.mean_styles`, 10,000 codes per domain) are a
constant of the export, which `mean_style` returns. The signatures without ψ are unchanged.
The domain names also travel as `assets/domain_names.txt` (one a line, in id order).
`model_info` reads no input, but takes one, `dummy` (int64, any values, e.g. [0]): TF Serving's
REST API refuses a request to a signature without inputs. Its outputs have no batch dimension, so
REST clients call it in the columnar format, `{"signature_name": "model_info", "inputs":
{"dummy": [0]}}`. An export carries MODEL_CARD.md (stargan_tf/model_card.py) beside the SavedModel.
Bad inputs (a wrong image size, a domain id out of range, one batch size for images and another
for domains, float images outside [-1, 1]) fail with an InvalidArgumentError saying which.
"""

import os
import shutil
import tempfile

import keras
import tensorflow as tf

from stargan_tf.data import augment, pipeline
from stargan_tf.errors import UserError
from stargan_tf.inference import mean_style
from stargan_tf.inference.translation import latent_codes

DOMAIN_NAMES_FILE = "domain_names.txt"
IMAGE_FORMATS = ("png", "jpeg")
# Float images may overshoot [-1, 1] by this much (round-off); 0..255 images fail loudly.
RANGE_TOLERANCE = 1e-3


def _spec(shape, dtype, name):
    return tf.TensorSpec(shape, dtype, name=name)


class ServingFunctions:
    """The signature functions, on one set of networks (those the archive tracks)."""

    def __init__(self, networks, domain_table, image_format="png", mean_styles=None):
        """mean_styles: float32 [num_domains, style_dim], the `*_psi` signatures' s_avg; None =
        `mean_style.mean_styles(networks)` when first needed."""
        if image_format not in IMAGE_FORMATS:
            raise ValueError(f"image_format={image_format!r}: use {' or '.join(IMAGE_FORMATS)}.")
        self.nets = networks
        self.config = networks.config
        self.table = domain_table
        self.image_format = image_format
        self.s_avg = mean_styles
        size = self.config.img_size
        # One function for the generator (with the FAN's masks for faces), which every translate
        # signature calls: the SavedModel holds its graph once, not once per signature.
        self._generate = tf.function(
            lambda x_real, s_trg: networks.generator(x_real, s_trg, masks=networks.masks(x_real)),
            input_signature=[
                tf.TensorSpec([None, size, size, 3], tf.float32),
                tf.TensorSpec([None, self.config.style_dim], tf.float32),
            ],
        )

    # Checks: each returns its input once the asserts on it have run.

    def _check_images(self, images, name):
        size = self.config.img_size
        asserts = [
            tf.debugging.assert_equal(
                tf.shape(images)[1:3], [size, size],
                message=f"{name} must be [N, {size}, {size}, 3] (NHWC at the model's img_size); "
                "resize them. Got shape",
            ),
            tf.debugging.assert_less_equal(
                tf.reduce_max(tf.abs(images)), 1.0 + RANGE_TOLERANCE,
                message=f"{name} must be floats in [-1, 1] (pixel / 127.5 - 1); max |value| is",
            ),
        ]  # fmt: skip
        with tf.control_dependencies(asserts):
            return tf.ensure_shape(tf.identity(images), [None, size, size, 3])

    def _check_domains(self, target_domain, n):
        d = self.config.num_domains
        names = ", ".join(f"{i}={name}" for i, name in enumerate(self.config.domain_names))
        asserts = [
            tf.debugging.assert_equal(
                tf.size(target_domain), n, message="target_domain needs one id per image; got"
            ),
            tf.debugging.assert_greater_equal(
                target_domain, tf.constant(0, tf.int64),
                message=f"target_domain out of range: the domains are {names}; got",
            ),
            tf.debugging.assert_less(
                target_domain, tf.constant(d, tf.int64),
                message=f"target_domain out of range: the domains are {names}; got",
            ),
        ]  # fmt: skip
        with tf.control_dependencies(asserts):
            return tf.identity(target_domain)

    def _check_psi(self, psi, n):
        asserts = [
            tf.debugging.assert_equal(
                tf.size(psi), n, message="psi needs one value per image; got"
            ),
            tf.debugging.assert_equal(
                tf.reduce_all(tf.math.is_finite(psi) & (psi >= 0.0)), True,
                message="psi must be finite and >= 0 (1 = no truncation, 0 = the mean style)",
            ),
        ]  # fmt: skip
        with tf.control_dependencies(asserts):
            return tf.identity(psi)

    def _check_batch(self, tensor, n, name):
        check = tf.debugging.assert_equal(
            tf.shape(tensor)[0], n, message=f"{name} needs one entry per image; got"
        )
        with tf.control_dependencies([check]):
            return tf.identity(tensor)

    # Bytes in and out.

    def _decode(self, image_bytes):
        size = self.config.img_size
        uint8 = tf.map_fn(
            lambda b: augment.resize(pipeline.decode(b), size),
            image_bytes,
            fn_output_signature=tf.TensorSpec([size, size, 3], tf.uint8),
        )  # [N, S, S, 3]
        return tf.reshape(augment.normalize(uint8), [-1, size, size, 3])

    def _encode(self, x_fake):
        uint8 = tf.cast(tf.clip_by_value(tf.round((x_fake + 1.0) * 127.5), 0, 255), tf.uint8)
        encode = tf.io.encode_png if self.image_format == "png" else tf.io.encode_jpeg
        return tf.map_fn(encode, uint8, fn_output_signature=tf.TensorSpec([], tf.string))

    # The networks.

    def _style_reference(self, x_ref, y_trg):
        y_trg = self._check_domains(y_trg, tf.shape(x_ref)[0])
        return self.nets.style_encoder(x_ref, y_trg)

    def _style_latent(self, y_trg, seed):
        seed = self._check_batch(seed, tf.size(y_trg), "seed")
        y_trg = self._check_domains(y_trg, tf.size(seed))
        z_trg = latent_codes(seed, self.config.latent_dim)  # [N, latent_dim]
        return self.nets.mapping_network(z_trg, y_trg)

    def _mean_styles(self, y_trg):
        if self.s_avg is None:
            with tf.init_scope():  # Computed eagerly, once, while the first signature traces.
                self.s_avg = mean_style.mean_styles(self.nets)
        # A constant of the graph: the export carries the mean styles.
        return tf.gather(tf.constant(self.s_avg, tf.float32), y_trg)  # [N, style_dim]

    def _style_latent_psi(self, y_trg, seed, psi):
        psi = self._check_psi(psi, tf.size(y_trg))
        y_trg = self._check_domains(y_trg, tf.size(y_trg))  # checked before the gather below
        return mean_style.truncate(self._style_latent(y_trg, seed), self._mean_styles(y_trg), psi)

    def _translate(self, x_real, s_trg):
        s_trg = self._check_batch(s_trg, tf.shape(x_real)[0], "style")
        # Face models (w_hpf > 0) compute their masks inside, with the FAN: clients send images
        # only.
        return self._generate(x_real, s_trg)

    # Float signatures.

    def translate_reference(self, images, reference_images, target_domain):
        x_real = self._check_images(images, "images")
        x_ref = self._check_images(reference_images, "reference_images")
        x_ref = self._check_batch(x_ref, tf.shape(x_real)[0], "reference_images")
        return {"x_fake": self._translate(x_real, self._style_reference(x_ref, target_domain))}

    def translate_latent(self, images, target_domain, seed):
        x_real = self._check_images(images, "images")
        y_trg = self._check_batch(target_domain, tf.shape(x_real)[0], "target_domain")
        return {"x_fake": self._translate(x_real, self._style_latent(y_trg, seed))}

    def translate_style(self, images, style):
        return {"x_fake": self._translate(self._check_images(images, "images"), style)}

    def style_from_reference(self, reference_images, target_domain):
        x_ref = self._check_images(reference_images, "reference_images")
        return {"s_trg": self._style_reference(x_ref, target_domain)}

    def style_from_latent(self, target_domain, seed):
        return {"s_trg": self._style_latent(target_domain, seed)}

    def translate_latent_psi(self, images, target_domain, seed, psi):
        x_real = self._check_images(images, "images")
        y_trg = self._check_batch(target_domain, tf.shape(x_real)[0], "target_domain")
        return {"x_fake": self._translate(x_real, self._style_latent_psi(y_trg, seed, psi))}

    def style_from_latent_psi(self, target_domain, seed, psi):
        return {"s_trg": self._style_latent_psi(target_domain, seed, psi)}

    def mean_style(self, target_domain):
        y_trg = self._check_domains(target_domain, tf.size(target_domain))
        return {"s_avg": self._mean_styles(y_trg)}

    # Bytes signatures: the float ones between decoding (resized as the pipelines do) and encoding.

    def translate_reference_bytes(self, image_bytes, reference_bytes, target_domain):
        out = self.translate_reference(
            self._decode(image_bytes), self._decode(reference_bytes), target_domain
        )
        return {"x_fake_bytes": self._encode(out["x_fake"])}

    def translate_latent_bytes(self, image_bytes, target_domain, seed):
        out = self.translate_latent(self._decode(image_bytes), target_domain, seed)
        return {"x_fake_bytes": self._encode(out["x_fake"])}

    def translate_style_bytes(self, image_bytes, style):
        out = self.translate_style(self._decode(image_bytes), style)
        return {"x_fake_bytes": self._encode(out["x_fake"])}

    def translate_latent_psi_bytes(self, image_bytes, target_domain, seed, psi):
        out = self.translate_latent_psi(self._decode(image_bytes), target_domain, seed, psi)
        return {"x_fake_bytes": self._encode(out["x_fake"])}

    def style_from_reference_bytes(self, reference_bytes, target_domain):
        return self.style_from_reference(self._decode(reference_bytes), target_domain)

    # Domain names.

    def domain_ids(self, domain_names):
        ids = self.table.lookup(domain_names)
        names = ",".join(self.config.domain_names)
        check = tf.debugging.assert_non_negative(
            ids, message=f"unknown domain name: the domains are {names}; ids (-1 = unknown)"
        )
        with tf.control_dependencies([check]):
            return {"target_domain": tf.identity(ids)}

    def model_info(self, dummy):
        del dummy  # Only there so that REST clients can call the signature (module docstring).
        c = self.config
        return {
            "domain_names": tf.constant(list(c.domain_names)),
            "img_size": tf.constant(c.img_size),
            "style_dim": tf.constant(c.style_dim),
            "latent_dim": tf.constant(c.latent_dim),
        }

    def signatures(self):
        """{name: (function, input signature)}; the first is the default."""
        c = self.config
        images = _spec([None, None, None, 3], tf.float32, "images")
        reference_images = _spec([None, None, None, 3], tf.float32, "reference_images")
        target_domain = _spec([None], tf.int64, "target_domain")
        seed = _spec([None], tf.int64, "seed")
        style = _spec([None, c.style_dim], tf.float32, "style")
        image_bytes = _spec([None], tf.string, "image_bytes")
        reference_bytes = _spec([None], tf.string, "reference_bytes")
        psi = _spec([None], tf.float32, "psi")
        return {
            "translate_reference": (
                self.translate_reference,
                [images, reference_images, target_domain],
            ),
            "translate_latent": (self.translate_latent, [images, target_domain, seed]),
            "translate_style": (self.translate_style, [images, style]),
            "style_from_reference": (self.style_from_reference, [reference_images, target_domain]),
            "style_from_latent": (self.style_from_latent, [target_domain, seed]),
            "translate_reference_bytes": (
                self.translate_reference_bytes,
                [image_bytes, reference_bytes, target_domain],
            ),
            "translate_latent_bytes": (
                self.translate_latent_bytes,
                [image_bytes, target_domain, seed],
            ),
            "translate_style_bytes": (self.translate_style_bytes, [image_bytes, style]),
            "style_from_reference_bytes": (
                self.style_from_reference_bytes,
                [reference_bytes, target_domain],
            ),
            "translate_latent_psi": (self.translate_latent_psi, [images, target_domain, seed, psi]),
            "translate_latent_psi_bytes": (
                self.translate_latent_psi_bytes,
                [image_bytes, target_domain, seed, psi],
            ),
            "style_from_latent_psi": (self.style_from_latent_psi, [target_domain, seed, psi]),
            "mean_style": (self.mean_style, [target_domain]),
            "domain_ids": (self.domain_ids, [_spec([None], tf.string, "domain_names")]),
            "model_info": (self.model_info, [_spec([None], tf.int64, "dummy")]),
        }


def export_archive(networks):
    """A Keras ExportArchive tracking the inference networks (G, F, E and the FAN when there):
    the SavedModel's and the LiteRT conversion's start."""
    archive = keras.export.ExportArchive()
    for net in (networks.generator, networks.mapping_network, networks.style_encoder, networks.fan):
        if net is not None:
            archive.track(net)
    return archive


def write_saved_model(networks, path, image_format="png", mean_styles=None):
    """Writes the networks as a SavedModel with the signatures of the module docstring.

    Args:
      networks: the networks to serve (the EMA ones; with the FAN when w_hpf > 0).
      path: the SavedModel directory to write (must not exist yet).
      image_format: encoding of the `*_bytes` outputs: "png" or "jpeg".
      mean_styles: [num_domains, style_dim], the `*_psi` signatures' mean styles (e.g. cached:
        `mean_style.mean_styles(networks, model_dir)`); None = computed here.
    """
    with tempfile.TemporaryDirectory() as tmp:
        names_file = os.path.join(tmp, DOMAIN_NAMES_FILE)
        with open(names_file, "w") as f:
            f.write("".join(name + "\n" for name in networks.config.domain_names))
        # A table built from the file makes it an asset of the SavedModel (assets/), which
        # `domain_ids` then reads: the names travel with the model, for any client.
        table = tf.lookup.StaticHashTable(
            tf.lookup.TextFileInitializer(
                names_file, tf.string, tf.lookup.TextFileIndex.WHOLE_LINE,
                tf.int64, tf.lookup.TextFileIndex.LINE_NUMBER,
            ),
            default_value=-1,
        )  # fmt: skip
        archive = export_archive(networks)
        archive.track(table)
        if mean_styles is None:
            mean_styles = mean_style.mean_styles(networks)
        functions = ServingFunctions(networks, table, image_format, mean_styles)
        for name, (fn, input_signature) in functions.signatures().items():
            archive.add_endpoint(name, fn, input_signature=input_signature)
        # write_out also registers the first endpoint, translate_reference, as serving_default.
        archive.write_out(path, verbose=False)


def next_version(export_base):
    """The next free TF Serving version under export_base: 1 + the largest integer name, or 1."""
    if not os.path.isdir(export_base):
        return 1
    versions = [int(name) for name in os.listdir(export_base) if name.isdigit()]
    return max(versions, default=0) + 1


def export_versioned(
    networks, export_base, version=None, image_format="png", model_card=None, mean_styles=None
):
    """Writes the SavedModel to `<export_base>/<version>/`, the layout TF Serving watches.

    It is written to a temporary directory beside it (a name TF Serving ignores) and renamed when
    complete, so a server polling export_base never loads half a model.

    Args:
      networks: the networks to serve (the EMA ones; with the FAN when w_hpf > 0).
      export_base: the model's base directory (created if missing).
      version: a positive int; None = `next_version(export_base)`.
      image_format: encoding of the `*_bytes` outputs: "png" or "jpeg".
      model_card: the text of MODEL_CARD.md to write beside the SavedModel (None: none).
      mean_styles: as `write_saved_model` takes them.

    Returns:
      The version directory written.

    Raises:
      UserError: the version exists already (versions are never overwritten) or is not positive.
    """
    if version is None:
        version = next_version(export_base)
    if version < 1:
        raise UserError(f"Export version {version} must be a positive integer.")
    path = os.path.join(export_base, str(version))
    if os.path.exists(path):
        raise UserError(
            f"{path} exists: version {version} was exported already; versions are never "
            f"overwritten (the next free one is {next_version(export_base)})."
        )
    os.makedirs(export_base, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".tmp-{version}-", dir=export_base)
    try:
        write_saved_model(networks, os.path.join(tmp, "model"), image_format, mean_styles)
        if model_card is not None:  # TF Serving ignores other files beside the SavedModel
            from stargan_tf.model_card import CARD_FILE

            with open(os.path.join(tmp, "model", CARD_FILE), "w") as f:
                f.write(model_card)
        os.rename(os.path.join(tmp, "model"), path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path
