"""Converts an official StarGAN v2 PyTorch checkpoint into a stargan_tf model directory.

  stargan-tf-convert \\
      --checkpoint expr/checkpoints/afhq/100000_nets_ema.ckpt --out converted/afhq \\
      --domain_names cat,dog,wild

The model config (img_size, style_dim, latent_dim, num_domains, max_conv_dim, dim_in, w_hpf) is
inferred from the tensor shapes; a flag (or a flagfile such as configs/afhq256.cfg) states a value
instead, and a value that contradicts the file is an error naming the tensor. The file is read
with torch.load(weights_only=True): it can run no code. The model directory gets a MODEL_CARD.md
naming the file, its SHA-256 and the weights' license (CC BY-NC 4.0 for the official ones).
Load the result with `stargan_tf.load_networks(OUT)`. `python -m stargan_tf.convert` is the same
command; tools/convert_pytorch_checkpoint.py, its old path, still calls it.

Face models (w_hpf > 0) need the FAN face-landmark network for their masks: the official CelebA-HQ
checkpoints hold it (entry `fan`) and it is converted with them; for a file without it, pass
--wing_path=wing.ckpt (official repository: bash download.sh wing).
"""

import os
import re
import shutil
import tempfile

from absl import flags, logging

from stargan_tf import cli
from stargan_tf.official import checkpoint as oc
from stargan_tf.errors import UserError
from stargan_tf.model_card import file_sha256

FLAGS = flags.FLAGS
flags.DEFINE_string(
    "checkpoint", None, "Official checkpoint file (*_nets_ema.ckpt or *_nets.ckpt)."
)
flags.DEFINE_string("out", None, "Model directory to write (config.json + TF checkpoint).")
cli.define_model_flags()
flags.DEFINE_integer(
    "step", None, "Training step to record; default: from the file name (100000_...)."
)
flags.DEFINE_boolean("overwrite", False, "Replace --out if it already holds files.")
flags.DEFINE_string(
    "wing_path",
    "",
    "FAN weights (the official wing.ckpt) to store with a "
    "w_hpf > 0 model whose checkpoint has no 'fan' entry; ignored otherwise.",
)


def step_from_filename(path):
    m = re.match(r"(\d+)_nets", os.path.basename(path))
    return int(m.group(1)) if m else 0


def check_out_dir(out, overwrite):
    if os.path.isfile(out):
        raise UserError(f"--out={out} is a file; give a directory path.")
    if os.path.isdir(out) and os.listdir(out) and not overwrite:
        raise UserError(f"--out={out} already holds files; pass --overwrite to replace them.")


def write_model_dir(networks, out, step, ema, source):
    """Writes into a temporary sibling directory, then renames it to `out`: no half-written
    output."""
    from stargan_tf.model_dir import save_networks

    parent = os.path.dirname(os.path.abspath(out))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(os.path.abspath(out))}.tmp-", dir=parent)
    try:
        save_networks(networks, tmp, step=step, ema=ema, source=source)
        if os.path.exists(out):
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def main(argv):
    del argv  # Unused.
    check_out_dir(FLAGS.out, FLAGS.overwrite)
    state = oc.read_official_checkpoint(FLAGS.checkpoint)
    overrides, domain_names = cli.model_overrides(FLAGS)
    config, inferred = oc.resolve_config(state, FLAGS.checkpoint, domain_names, **overrides)
    logging.info("Model config: %s", config)
    fan = None
    if config.w_hpf > 0 and "fan" not in state:
        if FLAGS.wing_path:
            from stargan_tf.official.fan import convert_official_fan

            fan = convert_official_fan(FLAGS.wing_path)
        else:
            logging.warning(
                "%s has w_hpf=%g but no 'fan' entry: sampling and export will refuse the model "
                "until it has the FAN; convert again with --wing_path=wing.ckpt (official "
                "repository: bash download.sh wing).",
                FLAGS.checkpoint,
                config.w_hpf,
            )
    networks = oc.networks_from_state(state, config, FLAGS.checkpoint, fan=fan)
    # Official *_nets_ema.ckpt files hold the EMA networks (no discriminator); *_nets.ckpt the
    # trained ones.
    ema = "_nets_ema" in os.path.basename(FLAGS.checkpoint) or "discriminator" not in state
    step = FLAGS.step if FLAGS.step is not None else step_from_filename(FLAGS.checkpoint)
    # The card and config.json name the file and its SHA-256: which weights these are.
    source = {
        "official_checkpoint": os.path.abspath(FLAGS.checkpoint),
        "sha256": file_sha256(FLAGS.checkpoint),
        "step": step,
        "inferred": inferred,
    }
    write_model_dir(networks, FLAGS.out, step, ema, source)
    nets = ", ".join(
        [name for name, _ in networks.items()] + (["fan"] if networks.fan is not None else [])
    )
    print(
        f"Converted {FLAGS.checkpoint} -> {FLAGS.out} ({'EMA' if ema else 'trained'} networks: "
        f"{nets}; "
        f"step {step}; img_size {config.img_size}, {config.num_domains} domains "
        f"{','.join(config.domain_names)}, w_hpf {config.w_hpf:g})."
    )


def run():
    """Entry point of `stargan-tf-convert` and `python -m stargan_tf.convert`."""
    flags.mark_flags_as_required(["checkpoint", "out"])
    cli.run(main)


if __name__ == "__main__":
    run()
