"""Loading the networks to run (the EMA ones when present), and naming target domains."""

import os

from absl import logging

from stargan_tf import model_dir
from stargan_tf.errors import UserError


def check_supported(networks):
    """Raises UserError for a w_hpf > 0 model without its FAN: its masks cannot be computed."""
    w_hpf = networks.config.w_hpf
    if w_hpf > 0 and networks.fan is None:
        raise UserError(
            f"This model has w_hpf={w_hpf:g}: its generator takes face masks from the FAN "
            "face-landmark network, and no FAN is loaded (without the masks it would not be the "
            "trained model); convert the official checkpoint with its 'fan' entry, or set "
            "networks.fan = stargan_tf.convert_official_fan('wing.ckpt') (official repository: "
            "bash download.sh wing)."
        )


def has_ema(directory, step=None):
    """Whether the checkpoint `load_networks(directory, step=step)` reads holds EMA networks."""
    path = model_dir.checkpoint_path(directory, step)
    return path is not None and "nets_ema" in model_dir.slots(path)


def load_inference_networks(directory, step=None):
    """Loads a model directory's networks for sampling, translation and export.

    The EMA networks when the checkpoint has them (training writes them; so does converting an
    official `*_nets_ema.ckpt`); otherwise, with a warning, the trained networks (a converted
    `*_nets.ckpt` holds no EMA copies).

    Args:
      directory: a model directory (training workdir or converter output).
      step: the checkpoint step; None = the latest.

    Returns:
      (networks, ema): the `Networks`, and whether they are the EMA ones.

    Raises:
      UserError: the directory is missing or not a model directory, or the model needs FAN
        masks and the directory holds no FAN.
    """
    if not os.path.isdir(directory):
        raise UserError(f"Checkpoint directory {directory} does not exist.")
    # load_networks takes the EMA networks when the checkpoint holds them (and says which).
    networks = model_dir.load_networks(directory, step=step)
    ema = networks.discriminator is None
    check_supported(networks)
    if not ema:
        logging.warning(
            "%s holds no EMA networks (e.g. a converted official *_nets.ckpt): using the trained "
            "networks, which usually give worse images than the EMA ones (*_nets_ema.ckpt).",
            directory,
        )
    return networks, ema


def domain_id(config, target_domain):
    """The id of a target domain given by name, id, or id as a string ("dog", 1, "1").

    Raises:
      UserError: no such domain; the message lists the domains.
    """
    names = list(config.domain_names)
    known = ", ".join(f"{i}={n}" for i, n in enumerate(names))
    if isinstance(target_domain, str):
        if target_domain in names:
            return names.index(target_domain)
        if not target_domain.strip().lstrip("-").isdigit():
            raise UserError(
                f"Unknown target domain {target_domain!r}; the model's domains: {known}."
            )
        target_domain = int(target_domain)
    if not 0 <= int(target_domain) < len(names):
        raise UserError(
            f"Target domain id {target_domain} is out of range; the model's domains: {known}."
        )
    return int(target_domain)
