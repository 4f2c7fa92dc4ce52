"""The four StarGAN v2 networks, and building them from a ModelConfig."""

import dataclasses
from typing import Optional

import keras
import numpy as np

from stargan_tf.config import ModelConfig
from stargan_tf.networks.encoders import Discriminator, StyleEncoder
from stargan_tf.networks.generator import Generator
from stargan_tf.networks.mapping_network import MappingNetwork
from stargan_tf.torch_layout import NETWORK_NAMES


@dataclasses.dataclass
class Networks:
    """The networks of one model. `discriminator` is None where none exists (EMA copies,
    official `*_nets_ema.ckpt` files). `fan` is the frozen FAN face-landmark network that makes
    the generator's high-pass masks when `config.w_hpf > 0` (None otherwise, or not loaded)."""

    generator: Generator
    mapping_network: MappingNetwork
    style_encoder: StyleEncoder
    discriminator: Optional[Discriminator]
    config: ModelConfig
    fan: Optional[keras.Model] = None

    def masks(self, x):
        """The generator's masks for images x in [-1, 1]: `fan.get_heatmap(x)` when w_hpf > 0,
        else None. Every generator call on x takes them (`generator(x, s, masks=nets.masks(x))`).

        Raises:
          ValueError: w_hpf > 0 and no FAN is loaded.
        """
        if self.config.w_hpf == 0:
            return None
        if self.fan is None:
            raise ValueError(
                f"The model has w_hpf={self.config.w_hpf:g}: its generator needs face masks from "
                "the FAN, and none is loaded (stargan_tf.convert_official_fan('wing.ckpt'), set "
                "as Networks.fan)."
            )
        return self.fan.get_heatmap(x)

    def items(self):
        """(name, network) pairs of the networks present, in the official order."""
        return [(n, getattr(self, n)) for n in NETWORK_NAMES if getattr(self, n) is not None]


def build_networks(config: ModelConfig, discriminator=True, fan=None) -> Networks:
    """Builds the networks of `config` and creates their variables (one call on dummy inputs).

    Call it under a `tf.distribute` strategy scope to place the variables there.

    Args:
      config: the model config.
      discriminator: also build the discriminator (not needed for inference).
      fan: the FAN that makes the generator's masks (w_hpf > 0 models), shared, not copied.
    """
    c = config
    generator = Generator(
        c.img_size, c.style_dim, c.max_conv_dim, c.w_hpf, c.dim_in, c.decoder, name="generator"
    )
    mapping_network = MappingNetwork(
        c.latent_dim, c.style_dim, c.num_domains, name="mapping_network"
    )
    style_encoder = StyleEncoder(
        c.img_size, c.style_dim, c.num_domains, c.max_conv_dim, c.dim_in, name="style_encoder"
    )
    disc = (
        Discriminator(c.img_size, c.num_domains, c.max_conv_dim, c.dim_in, name="discriminator")
        if discriminator
        else None
    )
    # Subclassed Keras models create their variables on the first call.
    x = np.zeros([1, c.img_size, c.img_size, 3], np.float32)
    y = np.zeros([1], np.int32)
    generator(x, np.zeros([1, c.style_dim], np.float32))
    mapping_network(np.zeros([1, c.latent_dim], np.float32), y)
    style_encoder(x, y)
    if disc is not None:
        disc(x, y)
    return Networks(generator, mapping_network, style_encoder, disc, config, fan)


def official_variable_map(networks: Networks):
    """`{"<network>/<official state-dict key>": variable}` for every weight of `networks`.

    The keys are those of the official PyTorch checkpoints (e.g.
    `generator/decode.0.norm1.fc.weight`); the variables are in Keras layouts (conv HWIO, dense
    [in, out]). This is the mapping the checkpoint converter uses.
    """
    return {f"{name}/{key}": var for name, key, var, _ in official_weights(networks)}


def official_weights(networks: Networks):
    """[(network name, official key, variable, layout)] for every weight of `networks`."""
    out = []
    for name, net in networks.items():
        for key, var, layout in net.official_weights():
            out.append((name, key, var, layout))
    return out


def count_params(model: keras.Model) -> int:
    """Number of scalar weights of a built model."""
    return int(sum(np.prod(v.shape) for v in model.weights))


__all__ = [
    "Discriminator",
    "Generator",
    "MappingNetwork",
    "Networks",
    "StyleEncoder",
    "build_networks",
    "count_params",
    "official_variable_map",
    "official_weights",
]
