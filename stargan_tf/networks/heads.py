"""The per-domain weights ("heads") of the networks, and carrying weights between two models whose
domain lists differ.

Three networks have one output per domain: the mapping network (an MLP head per domain,
`unshared.{d}.*`), the style encoder (a Linear head per domain, `unshared.{d}.*`) and the
discriminator (one 1x1 convolution whose output channel d is domain d's logit). Everything else
(the generator entirely, the mapping network's shared MLP, the convolutional trunks of the style
encoder and the discriminator) is shared by all domains.

`transfer` assigns a model's weights (or anything keyed like them, e.g. Adam moments) from
another model's, domain by domain: `sources[d]` names the source domain whose heads domain d
starts from, or None to keep d's own (fresh) values.
"""

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class HeadLayout:
    """Where the domains sit among a model's weights (keys: `<network>/<official key>`).

    Attributes:
      per_domain: {network name: [[keys of domain 0's head, in order], [domain 1's], ...]}.
      columns: keys of weights whose last axis indexes the domains (the discriminator's logits).
    """

    per_domain: dict
    columns: frozenset

    def position(self, key):
        """(network, domain, index within the head) of a per-domain key, else None."""
        for name, heads in self.per_domain.items():
            for d, keys in enumerate(heads):
                if key in keys:
                    return name, d, keys.index(key)
        return None

    def is_shared(self, key):
        return key not in self.columns and self.position(key) is None


def _keys_of(name, net):
    return {id(var): f"{name}/{key}" for key, var, _ in net.official_weights()}


def head_layout(networks):
    """The HeadLayout of a `stargan_tf.networks.Networks` (the networks present in it)."""
    per_domain, columns = {}, set()
    for name, net in networks.items():
        keys = _keys_of(name, net)
        if name == "mapping_network":
            per_domain[name] = [
                [keys[id(v)] for layer in head for v in layer.weights] for head in net.unshared
            ]
        elif name == "style_encoder":
            per_domain[name] = [[keys[id(v)] for v in layer.weights] for layer in net.unshared]
        elif name == "discriminator":
            columns.update(keys[id(v)] for v in net.conv_logits.weights)
    return HeadLayout(per_domain, frozenset(columns))


def transfer(src_values, dst_vars, src_layout, dst_layout, sources):
    """Assigns every variable of `dst_vars` present in the source from `src_values`.

    Args:
      src_values: {key: array} of the source model (keys as in `official_variable_map`).
      dst_vars: {key: variable} of the model to assign.
      src_layout, dst_layout: the two models' HeadLayouts.
      sources: per domain of the destination, the source domain index its heads start from, or
        None (its heads keep their values: a fresh initialisation).

    Returns:
      {"shared": n, "heads": n, "kept": n}: variables assigned whole from the same key, head
      variables (or logit columns) assigned from a source domain, and head variables left alone.
    """
    counts = {"shared": 0, "heads": 0, "kept": 0}
    for key, var in dst_vars.items():
        if key in dst_layout.columns:
            if key not in src_values:
                continue
            value = np.array(var.numpy())  # [..., num_domains]: fresh columns keep theirs
            src = np.asarray(src_values[key])
            for d, j in enumerate(sources):
                if j is not None:
                    value[..., d] = src[..., j]
            var.assign(value)
            counts["heads" if any(j is not None for j in sources) else "kept"] += 1
            continue
        where = dst_layout.position(key)
        if where is None:
            if key in src_values:
                var.assign(src_values[key])
                counts["shared"] += 1
            continue
        name, d, index = where
        if sources[d] is None:
            counts["kept"] += 1
            continue
        var.assign(src_values[src_layout.per_domain[name][sources[d]][index]])
        counts["heads"] += 1
    return counts
