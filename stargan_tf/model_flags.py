"""Command-line flags that describe a model, shared by the tools and the configs/*.cfg flagfiles.

Library code never reads flags: tools call `model_overrides(flag_values)` at their edge and pass
plain values on.
"""

from absl import flags

from stargan_tf.official_checkpoint import CONFIG_FIELDS


def define_model_flags(flag_values=flags.FLAGS):
    """Defines --img_size, --style_dim, ..., --domain_names; None means "infer from the weights"."""
    f = flag_values
    flags.DEFINE_integer("img_size", None, "Image height and width in pixels (a power of two >= 32).",
                         flag_values=f)
    flags.DEFINE_integer("style_dim", None, "Length of the style code s (official: 64).", flag_values=f)
    flags.DEFINE_integer("latent_dim", None, "Length of the latent code z (official: 16).",
                         flag_values=f)
    flags.DEFINE_integer("num_domains", None, "Number of domains.", flag_values=f)
    flags.DEFINE_integer("max_conv_dim", None, "Cap on the channels of any block (official: 512).",
                         flag_values=f)
    flags.DEFINE_integer("dim_in", None,
                         "Channels of the first convolution (official: 2**14 // img_size).",
                         flag_values=f)
    flags.DEFINE_float("w_hpf", None,
                       "Weight of the generator's high-pass path: 1 for faces (CelebA-HQ), 0 for "
                       "AFHQ. Converting: read from the file's hpf.filter when present.",
                       flag_values=f)
    flags.DEFINE_list("domain_names", [],
                      "Domain names in id order: CelebA-HQ female,male; AFHQ cat,dog,wild. "
                      "Default: domain0,domain1,...", flag_values=f)


def model_overrides(flag_values=flags.FLAGS):
    """The model fields given on the command line: {field: value or None}, and the domain names."""
    overrides = {field: flag_values[field].value for field in CONFIG_FIELDS}
    return overrides, list(flag_values["domain_names"].value)
