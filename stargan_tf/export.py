"""Exports a model for TF Serving: `python -m stargan_tf.export --checkpoint DIR --export_dir BASE`.

Writes a SavedModel of the EMA networks (of a converted official `*_nets.ckpt`, which holds no
EMA copies, the trained networks, with a warning) to `BASE/<version>/`, the layout TF Serving
watches; the version is the next free integer unless --version names one, and an existing
version is never overwritten. The signatures are listed in `stargan_tf/inference/serving.py`
(`saved_model_cli show --dir BASE/1 --all` prints them).

`--format=onnx` or `--format=litert` writes the ONNX or LiteRT files of the four inference paths
to `--export_dir` itself instead (a new directory; with model.json naming the domains, inputs and
outputs): see `stargan_tf/inference/portable.py`. They need the `onnx` or `litert` extra.
"""

import os
import time

from absl import flags, logging

from stargan_tf import cli
from stargan_tf.errors import UserError

FLAGS = flags.FLAGS
cli.define_checkpoint_flags("export")
flags.DEFINE_string(
    "export_dir", None, "Base directory of the exported versions (TF Serving's model_base_path)."
)
flags.DEFINE_integer(
    "version",
    None,
    "Version to write (a positive integer; default: the next "
    "free one). An existing version is never overwritten.",
)
flags.DEFINE_enum("image_format", "png", ["png", "jpeg"], "Encoding of the *_bytes outputs.")
flags.DEFINE_enum(
    "format",
    "savedmodel",
    ["savedmodel", "onnx", "litert"],
    "savedmodel: for TF Serving, in BASE/<version>/; onnx or litert: the files of "
    "the four inference paths in --export_dir (a new directory), for ONNX Runtime "
    'or LiteRT (pip install "stargan-tf[onnx]" or "stargan-tf[litert]").',
)


def _dir_size(path):
    return sum(
        os.path.getsize(os.path.join(dirpath, f))
        for dirpath, _, files in os.walk(path)
        for f in files
    )


def main(argv):
    del argv  # Unused.
    if not FLAGS.checkpoint or not FLAGS.export_dir:
        raise UserError("--checkpoint and --export_dir are required (see --help).")
    if not os.path.isdir(FLAGS.checkpoint):
        raise UserError(f"--checkpoint={FLAGS.checkpoint} is not a directory.")
    if FLAGS.format != "savedmodel":
        from stargan_tf.inference import portable

        if FLAGS.version is not None:
            raise UserError(
                f"--version is for --format=savedmodel (TF Serving's versions); "
                f"--format={FLAGS.format} writes --export_dir itself."
            )
        print(
            portable.export_model_dir(FLAGS.checkpoint, FLAGS.step, FLAGS.export_dir, FLAGS.format)
        )
        return
    if FLAGS.version is not None:
        if FLAGS.version < 1:
            raise UserError(f"--version={FLAGS.version} must be a positive integer.")
        existing = os.path.join(FLAGS.export_dir, str(FLAGS.version))
        if os.path.exists(existing):
            raise UserError(
                f"{existing} exists: version {FLAGS.version} was exported already; "
                "versions are never overwritten (omit --version for the next one)."
            )
    from stargan_tf.inference import models, serving

    start = time.monotonic()
    networks, ema = models.load_inference_networks(FLAGS.checkpoint, FLAGS.step)
    from stargan_tf import model_dir
    from stargan_tf.inference import mean_style

    card = model_dir.export_card(FLAGS.checkpoint, FLAGS.step, ema)
    # The mean styles of the *_psi signatures, from the model directory's cache when there.
    s_avg = mean_style.mean_styles(networks, model_dir=FLAGS.checkpoint)
    path = serving.export_versioned(
        networks,
        FLAGS.export_dir,
        FLAGS.version,
        FLAGS.image_format,
        model_card=card,
        mean_styles=s_avg,
    )
    logging.info("Exported in %.1f s.", time.monotonic() - start)
    c = networks.config
    print(
        f"Exported the {'EMA' if ema else 'trained (no EMA in the checkpoint)'} networks of "
        f"{FLAGS.checkpoint} to {path} ({_dir_size(path) / 2**20:.1f} MiB; img_size "
        f"{c.img_size}, domains {','.join(c.domain_names)})."
    )


def run():
    """Entry point of `stargan-tf-export` and `python -m stargan_tf.export`."""
    cli.run(main)


if __name__ == "__main__":
    run()
