"""Command-line flags that describe a model, shared by the tools and the configs/*.cfg flagfiles.

Library code never reads flags: tools call `model_overrides(flag_values)` at their edge and pass
plain values on.
"""

from absl import flags

from stargan_tf.official_checkpoint import CONFIG_FIELDS


TRAINING_DEFAULTS = {"img_size": 256, "style_dim": 64, "latent_dim": 16, "max_conv_dim": 512,
                     "dim_in": 0, "w_hpf": 1.0, "decoder": "adain"}


def define_model_flags(flag_values=flags.FLAGS, defaults=None):
    """Defines --img_size, --style_dim, ..., --domain_names.

    Args:
      flag_values: where to define them.
      defaults: {flag: default}; flags not in it default to None, meaning "infer" (from the
        weights when converting, from the data for num_domains and domain_names when training).
    """
    d = defaults or {}
    f = flag_values

    def default(name, official):
        value = d.get(name)
        note = " Default: infer it." if value is None else ""
        return value, (f" (official: {official}).{note}" if official else f".{note}")

    v, n = default("img_size", "256")
    flags.DEFINE_integer("img_size", v, "Image height and width in pixels, a power of two >= 32"
                         + n, flag_values=f)
    v, n = default("style_dim", "64")
    flags.DEFINE_integer("style_dim", v, "Length of the style code s" + n, flag_values=f)
    v, n = default("latent_dim", "16")
    flags.DEFINE_integer("latent_dim", v, "Length of the latent code z" + n, flag_values=f)
    v, n = default("num_domains", "")
    flags.DEFINE_integer("num_domains", v, "Number of domains (training: must match the data)" + n,
                         flag_values=f)
    v, n = default("max_conv_dim", "512")
    flags.DEFINE_integer("max_conv_dim", v, "Cap on the channels of any block" + n, flag_values=f)
    v, n = default("dim_in", "2**14 // img_size")
    flags.DEFINE_integer("dim_in", v, "Channels of the first convolution; 0 = the official "
                         "2**14 // img_size; smaller makes CPU-sized models" + n, flag_values=f)
    v, n = default("w_hpf", "1 for CelebA-HQ, 0 for AFHQ")
    flags.DEFINE_float("w_hpf", v, "Weight of the generator's high-pass path (faces); 0 disables "
                       "it; converting: read from the file's hpf.filter when present" + n,
                       flag_values=f)
    v, n = default("decoder", "adain")
    flags.DEFINE_enum("decoder", v, ["adain", "modconv"], "Generator decoder: adain (the paper's "
                      "AdaIN blocks) or modconv (StyleGAN2 modulated convolutions with an RGB skip "
                      "stream, for 512 px; no official weights exist for it)" + n, flag_values=f)
    flags.DEFINE_list("domain_names", [],
                      "Domain names in id order: CelebA-HQ female,male; AFHQ cat,dog,wild. "
                      "Converting: default domain0,domain1,...; training: must match the data.",
                      flag_values=f)


def model_overrides(flag_values=flags.FLAGS):
    """The model fields given on the command line: {field: value or None}, and the domain names."""
    overrides = {field: flag_values[field].value for field in CONFIG_FIELDS}
    if overrides["dim_in"] == 0:
        overrides["dim_in"] = None  # 0 = the official 2**14 // img_size
    return overrides, list(flag_values["domain_names"].value)
