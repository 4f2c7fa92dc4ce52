"""Evaluates a model as the paper does: `python -m stargan_tf.evaluate --checkpoint DIR
--train_data data/afhq/train --val_data data/afhq/val --inception_weights W --alexnet_weights A
--lpips_weights L --out OUT`.

FID and LPIPS of every translation task (source domain -> target domain), latent- and/or
reference-guided, by the official protocol (`stargan_tf.metrics.protocol`). Writes
OUT/metrics_<step>.json (every task and the means, named as the official JSON files name them),
TensorBoard scalars in OUT and, with --save_images, the outputs as PNG under OUT/<mode>/<task>/.
--inception=official gives numbers comparable with the paper's tables, --inception=fid (the
standard FID weights of pytorch-fid) numbers comparable with other papers'. The weight files are
the published PyTorch ones (see the README, "Evaluate (FID, LPIPS)"); reading them needs torch.
"""

import os

from absl import flags, logging

from stargan_tf import cli
from stargan_tf.errors import UserError

FLAGS = flags.FLAGS
cli.define_checkpoint_flags("evaluate")
flags.DEFINE_string(
    "train_data",
    None,
    "Training images, the FID's real side: an image folder "
    "root/<domain>/ (official layout), a TFRecord split or tfds:NAME[:split].",
)
flags.DEFINE_string("val_data", None, "Validation images (sources and references), same forms.")
flags.DEFINE_enum(
    "mode", "both", ["latent", "reference", "both"], "Latent-guided, reference-guided or both."
)
cli.define_eval_flags()
flags.DEFINE_integer("val_batch_size", 32, "Source images per batch (official: 32).")
flags.DEFINE_integer("seed", 777, "Seed of the latent codes and the reference order.")
flags.DEFINE_string(
    "out",
    None,
    "Output directory: metrics_<step>.json, TensorBoard scalars "
    "and, with --save_images, the outputs.",
)
flags.DEFINE_boolean(
    "save_images",
    False,
    "Also write every output as PNG under OUT/<mode>/<task>/ (as the official code does).",
)
flags.DEFINE_string(
    "stats_cache",
    None,
    "Directory caching the training images' FID "
    "statistics (default: ~/.cache/stargan_tf/fid_stats); '' = no cache.",
)


def _eval_config():
    from stargan_tf.metrics.config import DEFAULT_CACHE_DIR, MODES, EvalConfig

    if not FLAGS.checkpoint or not FLAGS.out:
        raise UserError("--checkpoint and --out are required (see --help).")
    if not os.path.isdir(FLAGS.checkpoint):
        raise UserError(f"--checkpoint={FLAGS.checkpoint} is not a directory.")
    for name in ("train_data", "val_data"):
        value = getattr(FLAGS, name)
        if value and not value.startswith("tfds:") and not os.path.isdir(value):
            raise UserError(f"--{name}={value} is not a directory.")
    config = EvalConfig(
        train_data=FLAGS.train_data or "",
        val_data=FLAGS.val_data or "",
        inception_weights=FLAGS.inception_weights or "",
        alexnet_weights=FLAGS.alexnet_weights or "",
        lpips_weights=FLAGS.lpips_weights or "",
        modes=MODES if FLAGS.mode == "both" else (FLAGS.mode,),
        inception=FLAGS.inception,
        num_outs_per_domain=FLAGS.num_outs_per_domain,
        val_batch_size=FLAGS.val_batch_size,
        seed=FLAGS.seed,
        stats_cache=(DEFAULT_CACHE_DIR if FLAGS.stats_cache is None else FLAGS.stats_cache),
    )
    config.validate()
    return config


def main(argv):
    del argv  # Unused.
    config = _eval_config()  # Fails fast, before TensorFlow builds anything.
    import tensorflow as tf

    from stargan_tf import model_dir
    from stargan_tf.inference import models
    from stargan_tf.metrics import protocol

    networks, _ = models.load_inference_networks(FLAGS.checkpoint, FLAGS.step)
    step = FLAGS.step
    if step is None:  # the latest checkpoint's, as loading took it
        step = model_dir.latest_step(FLAGS.checkpoint) or 0
    metrics = protocol.Metrics(config)
    image_dir = FLAGS.out if FLAGS.save_images else None
    results = protocol.evaluate(networks, metrics, step=step, image_dir=image_dir)
    path = os.path.join(FLAGS.out, f"metrics_{step:06d}.json")
    protocol.write_results(results, path, tf.summary.create_file_writer(FLAGS.out), step)
    means = ", ".join(
        f"{mode}: FID {results[f'FID_{mode}/mean']:.2f}, LPIPS {results[f'LPIPS_{mode}/mean']:.4f}"
        for mode in config.modes
    )
    logging.info("Step %d: %s", step, means)
    print(f"Wrote {path} ({means}).")


def run():
    """Entry point of `stargan-tf-evaluate` and `python -m stargan_tf.evaluate`."""
    cli.run(main)


if __name__ == "__main__":
    run()
