"""Trains StarGAN v2: `stargan-tf-train --recipe=afhq256 --train_data=SPLIT --workdir=DIR`.

`python -m stargan_tf.train` is the same command. Reads a TFRecord split written by
stargan-tf-make-tfrecords (or tfds:NAME[:split]), trains with the official recipe on every local
device (MirroredStrategy) or across machines (MultiWorkerMirroredStrategy when TF_CONFIG names a
cluster), and writes under --workdir:
checkpoints/ (resumed from on restart), samples/*.png (the fixed sample grid), logs/
(TensorBoard) and config.json. `stargan_tf.load_networks(workdir)` loads the EMA networks.
"""

import json
import os
import sys

from absl import flags, logging

from stargan_tf import cli, recipes
from stargan_tf.errors import UserError, describe

FLAGS = flags.FLAGS
flags.DEFINE_string(
    "recipe",
    None,
    "A training recipe shipped with the package, read as the "
    "--flagfile of its file at this place in the command line: flags after it "
    f"override its values. The recipes: {', '.join(recipes.names())} "
    "(stargan_tf/configs/NAME.cfg).",
)
# Data and run.
flags.DEFINE_string(
    "train_data",
    None,
    "Training split: a directory written by "
    "stargan-tf-make-tfrecords (OUT/train) or tfds:NAME[:split].",
)
flags.DEFINE_string(
    "val_data",
    "",
    "Validation split (same forms), used for the sample grid "
    "and --eval_every; default: the training split.",
)
flags.DEFINE_string(
    "workdir",
    None,
    "Directory for checkpoints, samples, TensorBoard logs and "
    "config.json; a run resumes from the latest checkpoint in it.",
)
flags.DEFINE_integer("batch_size", 8, "Global batch size (over all replicas; official: 8).")
flags.DEFINE_integer("val_batch_size", 32, "Batch size for reading the validation split.")
flags.DEFINE_integer("total_iters", 100_000, "Iterations to train (official: 100000).")
flags.DEFINE_integer("save_every", 10_000, "Save a checkpoint every this many iterations.")
flags.DEFINE_integer("sample_every", 5_000, "Render the sample grid every this many iterations.")
flags.DEFINE_integer("print_every", 10, "Log losses and speed every this many iterations.")
flags.DEFINE_integer("keep_checkpoints", 3, "Keep this many of the latest checkpoints.")
flags.DEFINE_integer(
    "resume_step",
    None,
    "Resume from the checkpoint of this step (default: the latest in --workdir).",
)
flags.DEFINE_string(
    "init_from",
    "",
    "Model directory to start from (fine-tuning): an official "
    "checkpoint converted by stargan-tf-convert or a training workdir. Loads "
    "everything it holds (the trained networks with D, else its EMA networks and a "
    "fresh D) and logs what came from where; the data's domains are matched to "
    'the model\'s by name (README, "Fine-tuning").',
)
flags.DEFINE_string(
    "init_domain_map",
    "",
    "With --init_from: NEW=OLD,...: each new domain of the "
    "data starts from a copy of the model domain OLD's heads (mapping-network, "
    "style-encoder and discriminator outputs); unmapped new domains start fresh, "
    "model domains not in the data are dropped. Renaming: --init_domain_map="
    "tabby=cat.",
)
flags.DEFINE_boolean(
    "init_optimizer",
    False,
    "With --init_from a training workdir: also load its "
    "Adam moments (default: fresh, a new run's schedule is its own).",
)
flags.DEFINE_integer(
    "d_warmup_iters",
    0,
    "With --init_from a model without a discriminator (an "
    "official *_nets_ema.ckpt): train D alone (G, F, E and their EMA frozen) for "
    "this many first iterations, so that a fresh D does not wreck a trained G.",
)
flags.DEFINE_integer(
    "seed",
    777,
    "Seed of the initial weights, the data pipeline and the sample grid (official: 777).",
)
flags.DEFINE_boolean(
    "deterministic",
    False,
    "Turn on TensorFlow op determinism: reproducible runs and resumes, somewhat slower.",
)
# Model (num_domains and domain_names come from the data).
cli.define_model_flags(defaults=cli.TRAINING_DEFAULTS)
# Losses and optimisation: the official names and defaults.
flags.DEFINE_float("lambda_reg", 1.0, "Weight of the R1 gradient penalty.")
flags.DEFINE_float("lambda_sty", 1.0, "Weight of the style reconstruction loss.")
flags.DEFINE_float(
    "lambda_ds",
    1.0,
    "Initial weight of the diversity-sensitive loss (official "
    "AFHQ recipe: 2); decays linearly to 0 over --ds_iter iterations.",
)
flags.DEFINE_integer("ds_iter", 100_000, "Iterations over which lambda_ds decays to 0.")
flags.DEFINE_float("lambda_cyc", 1.0, "Weight of the cycle-consistency loss.")
flags.DEFINE_float("lr", 1e-4, "Learning rate of D, G and E.")
flags.DEFINE_float("f_lr", 1e-6, "Learning rate of the mapping network F.")
flags.DEFINE_float("beta1", 0.0, "Adam beta1.")
flags.DEFINE_float("beta2", 0.99, "Adam beta2.")
flags.DEFINE_float(
    "weight_decay", 1e-4, "L2 weight decay, added to the gradient as PyTorch's Adam does."
)
flags.DEFINE_float("ema_beta", 0.999, "Decay of the exponential moving average of G, F and E.")
flags.DEFINE_float("randcrop_prob", 0.5, "Probability of the random resized crop augmentation.")
flags.DEFINE_enum(
    "augment_on",
    "auto",
    ["auto", "device", "host"],
    "Where the augmentation (random resized crop, flip) runs: 'device' in the "
    "training step on the accelerator, so the input pipeline's CPU threads only "
    "decode; 'host' in the input pipeline; 'auto' = device when a GPU or TPU is "
    "visible, else host. The same images either way (resuming may switch).",
)
# Speed and devices.
flags.DEFINE_boolean("jit_compile", False, "Compile the training step with XLA.")
flags.DEFINE_enum(
    "mixed_precision",
    "",
    ["", "mixed_float16", "mixed_bfloat16"],
    "Mixed precision policy (mixed_float16 uses dynamic loss scaling); R1 and the "
    "instance-norm statistics stay in float32.",
)
flags.DEFINE_string("wing_path", "", "FAN face-landmark weights (wing.ckpt) for --w_hpf > 0.")
# Faults.
flags.DEFINE_enum(
    "nan_policy",
    "stop",
    ["stop", "skip"],
    "On a NaN/Inf loss: stop (name the loss "
    "term and step, exit 1, the last checkpoint untouched) or skip (updates with a "
    "non-finite gradient leave weights and Adam moments unchanged; counted in "
    "TensorBoard as train/skipped_steps).",
)
flags.DEFINE_integer(
    "fault_nan_step",
    None,
    "Testing only: make the input images of this step NaN, to check --nan_policy.",
)
# Evaluation during training (python -m stargan_tf.evaluate has the same flags).
flags.DEFINE_integer(
    "eval_every",
    0,
    "Evaluate FID and LPIPS of the EMA networks by the "
    "official protocol every this many iterations (official: 50000); 0: never. "
    'Needs the weight files below (see the README, "Evaluate (FID, LPIPS)").',
)
cli.define_eval_flags()  # for --eval_every
flags.DEFINE_integer(
    "cpu_devices",
    0,
    "Split the CPU into this many logical devices and train "
    "on all of them (tests the multi-replica path without GPUs); 0: no split.",
)


def make_strategy(cpu_devices):
    """MultiWorkerMirroredStrategy when TF_CONFIG names a cluster, MirroredStrategy over several
    GPUs or --cpu_devices, else TensorFlow's default strategy (one device: a MirroredStrategy of
    one replica only adds mirrored variables and an all-reduce to each step; with the input
    threads of `data.pipeline.input_threads`, ~9% of a 32 px iteration on 2 cores)."""
    import tensorflow as tf

    tf_config = json.loads(os.environ.get("TF_CONFIG", "{}") or "{}")
    if cpu_devices:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(cpu_devices)]
        )
    if sum(len(v) for v in tf_config.get("cluster", {}).values()) > 1:
        return tf.distribute.MultiWorkerMirroredStrategy()
    if cpu_devices:
        return tf.distribute.MirroredStrategy([f"/cpu:{i}" for i in range(cpu_devices)])
    if len(tf.config.list_physical_devices("GPU")) > 1:
        return tf.distribute.MirroredStrategy()  # every GPU
    return tf.distribute.get_strategy()  # the one GPU, or the CPU


def build_config(source):
    """The TrainConfig of the flags, with the domains of the data."""
    from stargan_tf.config import ModelConfig
    from stargan_tf.training.config import TrainConfig

    overrides, domain_names = cli.model_overrides(FLAGS)
    num_domains = overrides.pop("num_domains")
    if num_domains is not None and num_domains != source.num_domains:
        raise UserError(
            f"--num_domains={num_domains}, but {FLAGS.train_data} has "
            f"{source.num_domains} domains ({','.join(source.domains)})."
        )
    if domain_names and tuple(domain_names) != tuple(source.domains):
        raise UserError(
            f"--domain_names={','.join(domain_names)}, but {FLAGS.train_data} has the "
            f"domains {','.join(source.domains)}."
        )
    try:
        model = ModelConfig(
            num_domains=source.num_domains, domain_names=tuple(source.domains), **overrides
        )
    except ValueError as e:
        raise UserError(str(e)) from None
    # Every other field of TrainConfig is the flag of its name.
    return cli.config_from_flags(TrainConfig, FLAGS, model=model)


def sample_input(source, img_size, batch_size, num_domains, sources_per_domain=2):
    """Fixed images for the sample grid: a few sources and one reference of every domain."""
    import numpy as np

    from stargan_tf.data.pipeline import eval_dataset

    picked = {d: [] for d in range(num_domains)}
    need = sources_per_domain + 1
    for x, y, _ in eval_dataset(source, img_size, batch_size):
        for xi, yi in zip(x.numpy(), y.numpy()):
            if len(picked[int(yi)]) < need:
                picked[int(yi)].append(xi)
        if all(len(v) >= need for v in picked.values()):
            break
    x_src, y_src, x_ref, y_ref = [], [], [], []
    for d, images in picked.items():
        x_src += images[:sources_per_domain]
        y_src += [d] * len(images[:sources_per_domain])
        if len(images) > sources_per_domain:
            x_ref.append(images[sources_per_domain])
            y_ref.append(d)
    return {
        "x_src": np.stack(x_src),
        "y_src": np.array(y_src, np.int32),
        "x_ref": np.stack(x_ref) if x_ref else np.stack(x_src[:1]),
        "y_ref": np.array(y_ref or y_src[:1], np.int32),
    }


def make_dataset_fn(source, config):
    """The trainer's input: `(input_context, start_step) -> per-replica dataset` of uint8 images
    (normalised, and with augment_on=device augmented, in the step)."""
    from stargan_tf.data.pipeline import resolve_augment_on, train_dataset

    augment_on = resolve_augment_on(config.augment_on)
    logging.info("Augmentation on the %s.", augment_on)

    def dataset_fn(ctx, start_step):
        return train_dataset(
            source,
            config.model.img_size,
            ctx.get_per_replica_batch_size(config.batch_size),
            config.model.latent_dim,
            config.seed,
            randcrop_prob=config.randcrop_prob,
            input_context=ctx,
            start_step=start_step,
            normalize=False,
            augment_on=augment_on,
        )

    return dataset_fn


def main(argv):
    del argv  # Unused.
    if FLAGS.workdir is None or FLAGS.train_data is None:
        raise UserError("--train_data and --workdir are required (see --help).")
    if FLAGS.img_size < 32 or FLAGS.img_size & (FLAGS.img_size - 1):
        raise UserError(f"--img_size={FLAGS.img_size} is not a power of two >= 32 (e.g. 256, 512).")
    if FLAGS.recipe:  # its flags are already in FLAGS (read as a --flagfile)
        logging.info(
            "Recipe %s: %s, overridden by the flags after it.",
            FLAGS.recipe,
            recipes.path(FLAGS.recipe),
        )
    from stargan_tf.data.pipeline import open_source

    source = open_source(FLAGS.train_data)
    val_source = open_source(FLAGS.val_data) if FLAGS.val_data else source
    config = build_config(source)

    import tensorflow as tf

    from stargan_tf.training.preemption import PREEMPTED_EXIT_CODE, Preempted
    from stargan_tf.training.trainer import (
        CheckpointWriteError,
        NonFiniteLoss,
        Trainer,
        configure_process,
    )

    # Process-wide settings first: the intra-op threads only apply before the runtime starts.
    configure_process(config)
    strategy = make_strategy(FLAGS.cpu_devices)
    logging.info("Training on %d replica(s): %s", strategy.num_replicas_in_sync, config)
    dataset_fn = make_dataset_fn(source, config)
    grid_input = sample_input(
        val_source, config.model.img_size, config.val_batch_size, config.model.num_domains
    )
    import keras

    # The initial weights follow --seed too (the official code seeds torch with its --seed):
    # with --deterministic, a run repeats exactly.
    keras.utils.set_random_seed(config.seed)
    trainer = Trainer(config, strategy, dataset_fn, grid_input)
    try:
        trainer.train()
    except Preempted as e:
        logging.warning("%s", e)
        sys.exit(PREEMPTED_EXIT_CODE)
    except (NonFiniteLoss, CheckpointWriteError) as e:
        cli.fail(str(e), cli.RUN_FAILED)
    except tf.errors.DataLossError as e:  # a shard damaged after dataset.json was checked
        raise UserError(
            f"reading --train_data={config.train_data} failed: "
            f"{describe(e)}. A shard is damaged: copy the split again "
            "or write it again with stargan-tf-make-tfrecords; then run the same "
            "command, which resumes from the last checkpoint."
        ) from None
    logging.info("Done: %s", config.workdir)


def run():
    """Entry point of `stargan-tf-train` and `python -m stargan_tf.train`."""
    cli.run(main, expand_argv=recipes.expand_recipe_flags)


if __name__ == "__main__":
    run()
