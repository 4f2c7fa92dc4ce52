"""ONNX and LiteRT exports: the five inference paths as files that run without TensorFlow.

`python -m stargan_tf.export --format=onnx|litert --checkpoint DIR --export_dir OUT` writes OUT/
(it must not exist yet; written beside it under a temporary name and renamed when complete):

  --format=onnx:    translate_latent.onnx, translate_reference.onnx, style_from_latent.onnx,
                    style_from_reference.onnx, translate_style.onnx (one ONNX graph per path,
                    opset `ONNX_OPSET`);
  --format=litert:  model.tflite, one LiteRT model with five signatures of those names (the
                    weights are stored once);
  both:             model.json (what a client needs: the domains by id, img_size, style_dim,
                    latent_dim, and per path its file, signature, inputs and outputs with dtypes
                    and shapes; from a model directory, the mean style of each domain for ψ
                    truncation) and MODEL_CARD.md.

The paths (N is free; S = img_size; images NHWC float32 in [-1, 1]; y_trg int64 domain ids):

  translate_latent(x_real [N,S,S,3], z_trg [N,latent_dim], y_trg [N]) -> x_fake [N,S,S,3]
  translate_reference(x_real [N,S,S,3], x_ref [N,S,S,3], y_trg [N])   -> x_fake [N,S,S,3]
  style_from_latent(z_trg [N,latent_dim], y_trg [N])                   -> s_trg [N,style_dim]
  style_from_reference(x_ref [N,S,S,3], y_trg [N])                     -> s_trg [N,style_dim]
  translate_style(x_real [N,S,S,3], s_trg [N,style_dim])               -> x_fake [N,S,S,3]

ψ truncation, as `translate(..., psi=)` does it: s = mean_styles[y] + ψ (s - mean_styles[y]) on
style_from_latent's s_trg (model.json's mean_styles), then translate_style.

Unlike the SavedModel's `seed` inputs, the latent paths take z_trg itself (drawn by the client
from N(0, I)): the SavedModel's seeded codes come from TensorFlow's Philox generator, which
neither ONNX nor LiteRT has. Face models (w_hpf > 0) compute their FAN masks inside the two
translate paths, as the SavedModel does. The graphs are traced with float32 instance-norm
statistics (`normalization.float32_statistics`): the runtimes have no float64 reductions.
Nothing checks the inputs' values inside (an id out of range is the runtime's error or a wrong
result): clients check them, with model.json.
"""

import json
import os
import shutil
import tempfile

import numpy as np
import tensorflow as tf

from stargan_tf.errors import UserError
from stargan_tf.layers import normalization

FORMATS = ("onnx", "litert")
# The Python modules each format needs, by the extra that installs them.
REQUIRED_MODULES = {
    "onnx": ("tf2onnx", "onnx", "onnxruntime"),
    "litert": ("ai_edge_litert",),
}
PATHS = (
    "translate_latent",
    "translate_reference",
    "style_from_latent",
    "style_from_reference",
    "translate_style",
)
ONNX_OPSET = 17
LITERT_FILE = "model.tflite"
MODEL_JSON = "model.json"
# The export's own check: its outputs vs the Keras networks on CHECK_BATCH random inputs.
CHECK_BATCH = 2
CHECK_SEED = 0


def check_installed(fmt):
    """Raises UserError naming the extra to install when a module `fmt` needs cannot be imported."""
    if fmt not in REQUIRED_MODULES:
        raise UserError(f"Unknown export format {fmt!r}: use one of {', '.join(FORMATS)}.")
    for module in REQUIRED_MODULES[fmt]:
        try:
            __import__(module)
        except ImportError:
            raise UserError(
                f'--format={fmt} needs the "{fmt}" extra ({module} is not installed): '
                f'pip install "stargan-tf[{fmt}]"'
            ) from None


def _specs(config):
    size = config.img_size
    return {
        "x_real": tf.TensorSpec([None, size, size, 3], tf.float32, name="x_real"),
        "x_ref": tf.TensorSpec([None, size, size, 3], tf.float32, name="x_ref"),
        "z_trg": tf.TensorSpec([None, config.latent_dim], tf.float32, name="z_trg"),
        "y_trg": tf.TensorSpec([None], tf.int64, name="y_trg"),
        "s_trg": tf.TensorSpec([None, config.style_dim], tf.float32, name="s_trg"),
    }


def path_functions(networks):
    """{path: (function, input specs, output specs)} of the five paths, on `networks`.

    The functions take their inputs positionally in the order of the specs and return
    {output name: tensor}. The translate paths compute face masks inside (w_hpf > 0).
    """
    c = networks.config
    spec = _specs(c)
    x_fake = tf.TensorSpec([None, c.img_size, c.img_size, 3], tf.float32, name="x_fake")
    s_trg = tf.TensorSpec([None, c.style_dim], tf.float32, name="s_trg")

    def generate(x_real, s):
        return networks.generator(x_real, s, masks=networks.masks(x_real))

    def translate_latent(x_real, z_trg, y_trg):
        return {"x_fake": generate(x_real, networks.mapping_network(z_trg, y_trg))}

    def translate_reference(x_real, x_ref, y_trg):
        return {"x_fake": generate(x_real, networks.style_encoder(x_ref, y_trg))}

    def style_from_latent(z_trg, y_trg):
        return {"s_trg": networks.mapping_network(z_trg, y_trg)}

    def style_from_reference(x_ref, y_trg):
        return {"s_trg": networks.style_encoder(x_ref, y_trg)}

    def translate_style(x_real, s_trg):
        # A style the client made: e.g. ψ-truncated with model.json's mean_styles.
        return {"x_fake": generate(x_real, s_trg)}

    return {
        "translate_latent": (
            translate_latent,
            [spec["x_real"], spec["z_trg"], spec["y_trg"]],
            [x_fake],
        ),
        "translate_reference": (
            translate_reference,
            [spec["x_real"], spec["x_ref"], spec["y_trg"]],
            [x_fake],
        ),
        "style_from_latent": (style_from_latent, [spec["z_trg"], spec["y_trg"]], [s_trg]),
        "style_from_reference": (style_from_reference, [spec["x_ref"], spec["y_trg"]], [s_trg]),
        "translate_style": (translate_style, [spec["x_real"], spec["s_trg"]], [x_fake]),
    }


def _describe(spec):
    return {"name": spec.name, "dtype": spec.dtype.name, "shape": spec.shape.as_list()}


def model_description(networks, fmt, ema=True, mean_styles=None):
    """The contents of model.json for an export of `networks` in format `fmt` (with the mean
    style of each domain, for ψ truncation, when given)."""
    c = networks.config
    paths = {}
    for name, (_, inputs, outputs) in path_functions(networks).items():
        paths[name] = {
            "file": f"{name}.onnx" if fmt == "onnx" else LITERT_FILE,
            "signature": None if fmt == "onnx" else name,
            "inputs": [_describe(s) for s in inputs],
            "outputs": [_describe(s) for s in outputs],
        }
    return {
        "format": fmt,
        "domain_names": list(c.domain_names),
        "img_size": c.img_size,
        "style_dim": c.style_dim,
        "latent_dim": c.latent_dim,
        "w_hpf": c.w_hpf,
        "decoder": c.decoder,
        "ema": bool(ema),
        "images": "NHWC float32 in [-1, 1] (pixel / 127.5 - 1) at img_size x img_size; x_fake "
        "comes back in the same scale (clip to [-1, 1] before making pixels)",
        "y_trg": "int64 domain ids, one per image: the index in domain_names",
        "z_trg": "float32 latent codes drawn from N(0, I), one per image",
        "paths": paths,
        **(
            {}
            if mean_styles is None
            else {
                "mean_styles": np.asarray(mean_styles, np.float32).tolist(),
                "psi": "ψ truncation: s = mean_styles[y] + psi * (s - mean_styles[y]) applied to "
                "style_from_latent's s_trg, then translate_style (psi = 1: the style as drawn)",
            }
        ),
    }


def _write_onnx(networks, out_dir):
    import tf2onnx

    for name, (fn, inputs, _) in path_functions(networks).items():
        function = tf.function(fn, input_signature=inputs)
        tf2onnx.convert.from_function(
            function,
            input_signature=inputs,
            opset=ONNX_OPSET,
            output_path=os.path.join(out_dir, f"{name}.onnx"),
        )


def _write_litert(networks, out_dir):
    from stargan_tf.inference import serving

    with tempfile.TemporaryDirectory() as tmp:
        # One SavedModel with a signature per path (Keras variables need ExportArchive's
        # tracking), converted into one LiteRT model that keeps the signatures.
        archive = serving.export_archive(networks)
        for name, (fn, inputs, _) in path_functions(networks).items():
            archive.add_endpoint(name, fn, input_signature=inputs)
        saved_model = os.path.join(tmp, "saved_model")
        archive.write_out(saved_model, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(
            saved_model, signature_keys=list(PATHS)
        )
        # Built-in ops only: a model that needs TensorFlow ops (Flex) fails here, loudly, instead
        # of at load time in a runtime without them.
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        data = converter.convert()
    with open(os.path.join(out_dir, LITERT_FILE), "wb") as f:
        f.write(data)


class Runner:
    """Runs the paths of an export directory with ONNX Runtime or the LiteRT interpreter.

    Needs numpy and the runtime only (no TensorFlow, no stargan_tf): tests and model.json's
    readers do what it does. `runner(path, **inputs)` -> {output name: numpy array}.
    """

    def __init__(self, export_dir, num_threads=None):
        with open(os.path.join(export_dir, MODEL_JSON)) as f:
            self.description = json.load(f)
        self.format = self.description["format"]
        self._sessions = {}
        if self.format == "onnx":
            import onnxruntime

            options = onnxruntime.SessionOptions()
            if num_threads:
                options.intra_op_num_threads = num_threads
            for name, path in self.description["paths"].items():
                self._sessions[name] = onnxruntime.InferenceSession(
                    os.path.join(export_dir, path["file"]),
                    options,
                    providers=["CPUExecutionProvider"],
                )
        else:
            from ai_edge_litert.interpreter import Interpreter

            self._interpreter = Interpreter(
                os.path.join(export_dir, LITERT_FILE), num_threads=num_threads
            )

    def __call__(self, path, **inputs):
        spec = self.description["paths"][path]
        feed = {i["name"]: np.asarray(inputs[i["name"]], i["dtype"]) for i in spec["inputs"]}
        if self.format == "onnx":
            names = [o["name"] for o in spec["outputs"]]
            return dict(zip(names, self._sessions[path].run(names, feed)))
        return self._interpreter.get_signature_runner(path)(**feed)


def check_inputs(config, batch=CHECK_BATCH, seed=CHECK_SEED):
    """Random inputs of every path: {name: numpy array} (ids spread over the domains)."""
    rng = np.random.default_rng(seed)
    size = config.img_size
    return {
        "x_real": rng.uniform(-1, 1, [batch, size, size, 3]).astype(np.float32),
        "x_ref": rng.uniform(-1, 1, [batch, size, size, 3]).astype(np.float32),
        "z_trg": rng.standard_normal([batch, config.latent_dim]).astype(np.float32),
        "y_trg": (np.arange(batch) % config.num_domains)[::-1].astype(np.int64),
        "s_trg": rng.standard_normal([batch, config.style_dim]).astype(np.float32),
    }


def keras_outputs(networks, inputs):
    """What the Keras networks (run eagerly) give for `inputs`: {path: {output name: array}}."""
    out = {}
    for name, (fn, specs, _) in path_functions(networks).items():
        result = fn(*[tf.constant(inputs[s.name]) for s in specs])
        out[name] = {k: np.asarray(v) for k, v in result.items()}
    return out


def max_abs_differences(runner, networks, inputs):
    """{path: max |runtime - Keras|} over the path's outputs on `inputs`."""
    want = keras_outputs(networks, inputs)
    diffs = {}
    for name in PATHS:
        got = runner(name, **inputs)
        diffs[name] = max(float(np.abs(got[k] - v).max()) for k, v in want[name].items())
    return diffs


def export(networks, export_dir, fmt, ema=True, model_card=None, mean_styles=None):
    """Writes the ONNX or LiteRT export of `networks` to export_dir (see the module docstring).

    After writing, it runs every path of the files with the runtime on random inputs and
    records the largest difference from the Keras networks in model.json ("check").

    Args:
      networks: the networks (the EMA ones; with the FAN when w_hpf > 0).
      export_dir: the directory to create; it must not exist yet (or be empty).
      fmt: "onnx" or "litert".
      ema: whether the networks are the EMA ones (recorded in model.json).
      model_card: the text of MODEL_CARD.md (None: none).
      mean_styles: [num_domains, style_dim], the mean style of each domain (None: not stored).

    Returns:
      The description written to model.json.

    Raises:
      UserError: export_dir exists and is not empty, or the format's extra is missing.
    """
    check_installed(fmt)
    _check_new_dir(export_dir)
    parent = os.path.dirname(os.path.abspath(export_dir))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".tmp-{os.path.basename(export_dir)}-", dir=parent)
    try:
        with normalization.float32_statistics():
            (_write_onnx if fmt == "onnx" else _write_litert)(networks, tmp)
        description = model_description(networks, fmt, ema, mean_styles)
        with open(os.path.join(tmp, MODEL_JSON), "w") as f:
            json.dump(description, f, indent=2)
        if model_card is not None:
            from stargan_tf.model_card import CARD_FILE

            with open(os.path.join(tmp, CARD_FILE), "w") as f:
                f.write(model_card)
        diffs = max_abs_differences(Runner(tmp), networks, check_inputs(networks.config))
        description["check"] = {
            "max_abs_difference_from_keras": diffs,
            "inputs": f"{CHECK_BATCH} random images in [-1, 1] and latent codes, seed "
            f"{CHECK_SEED}, against the Keras networks run eagerly (float64 "
            "instance-norm statistics on a CPU)",
        }
        with open(os.path.join(tmp, MODEL_JSON), "w") as f:
            json.dump(description, f, indent=2)
        if os.path.isdir(export_dir):
            os.rmdir(export_dir)  # empty (checked above)
        os.rename(tmp, export_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return description


def _check_new_dir(export_dir):
    if os.path.exists(export_dir) and (not os.path.isdir(export_dir) or os.listdir(export_dir)):
        raise UserError(
            f"--export_dir={export_dir} exists and is not an empty directory: exports "
            "never overwrite; name a new one."
        )


def export_model_dir(directory, step, export_dir, fmt):
    """`python -m stargan_tf.export --format=onnx|litert`: exports a model directory's networks
    (the EMA ones when present) with its model card; returns the line to print.

    Raises:
      UserError: the format's extra is missing (checked first), export_dir is not new, or the
        directory is no model.
    """
    import time

    from absl import logging

    from stargan_tf import model_dir
    from stargan_tf.inference import mean_style, models

    check_installed(fmt)
    _check_new_dir(export_dir)
    start = time.monotonic()
    networks, ema = models.load_inference_networks(directory, step)
    card = model_dir.export_card(directory, step, ema)
    s_avg = mean_style.mean_styles(networks, model_dir=directory)  # cached in the directory
    description = export(networks, export_dir, fmt, ema, model_card=card, mean_styles=s_avg)
    logging.info("Exported in %.1f s.", time.monotonic() - start)
    c = networks.config
    sizes = file_sizes(export_dir)
    worst = max(description["check"]["max_abs_difference_from_keras"].values())
    return (
        f"Exported the {'EMA' if ema else 'trained (no EMA in the checkpoint)'} networks of "
        f"{directory} as {fmt} to {export_dir} ({sum(sizes.values()) / 2**20:.1f} MiB in "
        f"{len(sizes)} file(s); img_size {c.img_size}, domains {','.join(c.domain_names)}; "
        f"max |{fmt} - Keras| {worst:.1e} on random inputs)."
    )


def file_sizes(export_dir):
    """{file name: bytes} of the model files of an export directory."""
    return {
        name: os.path.getsize(os.path.join(export_dir, name))
        for name in sorted(os.listdir(export_dir))
        if name.endswith((".onnx", ".tflite"))
    }
