"""The mapping network F(z, y): a latent code to a style code of domain y."""

import keras
import tensorflow as tf

from stargan_tf.layers import initializers
from stargan_tf.layers.blocks import dense_weights
from stargan_tf.networks import common

HIDDEN_DIM = 512  # Fixed in the official code (its --hidden_dim flag is unused).


class MappingNetwork(keras.Model):
    """`mapping_network(z, y)` -> s, [N, style_dim].

    A shared MLP (4 x Linear+ReLU, width 512) and, per domain, 3 x Linear+ReLU and a Linear to
    `style_dim`; every head runs and the one of each sample's domain is picked.

    Args:
      latent_dim: length of the latent code z.
      style_dim: length of the style code s.
      num_domains: number of domains (output heads).
    """

    def __init__(self, latent_dim=16, style_dim=64, num_domains=2, **kwargs):
        super().__init__(**kwargs)
        self.latent_dim = latent_dim
        self.style_dim = style_dim
        self.num_domains = num_domains
        self.shared = [initializers.dense(HIDDEN_DIM) for _ in range(4)]
        self.unshared = [
            [initializers.dense(HIDDEN_DIM) for _ in range(3)] + [initializers.dense(style_dim)]
            for _ in range(num_domains)
        ]

    def build(self, *input_shapes):
        # The sublayers create their variables on the first call (see build_networks).
        pass

    def call(self, z, y):
        h = z
        for layer in self.shared:
            h = tf.nn.relu(layer(h))
        out = []
        for head in self.unshared:
            s = h
            for layer in head[:-1]:
                s = tf.nn.relu(layer(s))
            out.append(head[-1](s))
        out = tf.stack(out, axis=1)  # [N, num_domains, style_dim]
        return tf.cast(common.pick_domain(out, y), tf.float32)  # [N, style_dim]

    def official_weights(self):
        """[(official state-dict key, variable, layout)] for every weight."""
        out = []
        for i, layer in enumerate(self.shared):
            out += dense_weights(f"shared.{2 * i}", layer)  # Linear at 0, 2, 4, 6; ReLU between.
        for d, head in enumerate(self.unshared):
            for i, layer in enumerate(head):
                out += dense_weights(f"unshared.{d}.{2 * i}", layer)
        return out

    def get_config(self):
        return {
            **super().get_config(),
            "latent_dim": self.latent_dim,
            "style_dim": self.style_dim,
            "num_domains": self.num_domains,
        }
