"""Running command-line tools: absl flags, with bad input reported in one line and exit status 2,
and the flag groups several tools share (the model's architecture flags).

Library code never reads flags: tools call `model_overrides(flag_values)` at their edge and pass
plain values on.
"""

import os
import sys

from absl import app, flags

from stargan_tf.config import MODEL_FIELDS
from stargan_tf.errors import UserError

# The flag groups below are defined here on behalf of the tools: absl attributes them to the tool
# that calls the define_* function, so that they are its key flags and its --help lists them.
flags.disclaim_key_flags()

USAGE_ERROR = 2  # The Unix convention for "bad command line / bad input".
RUN_FAILED = 1  # The run itself failed (e.g. training diverged): not a usage error.


def fail(message, status=USAGE_ERROR):
    """Prints `<tool>: error: <message>` on stderr and exits with `status` (default 2)."""
    prog = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "stargan_tf"
    print(f"{prog}: error: {message}", file=sys.stderr)
    sys.exit(status)


HELP_FLAGS = ("-?", "-h", "--help", "--helpshort", "--helpfull", "--helpxml")


def _parse_flags(argv, expand_argv=None):
    if expand_argv is not None:
        argv, error = expand_argv(argv)
        if error:
            fail(error)
    try:
        return flags.FLAGS(argv)
    except flags.Error as e:
        fail(f"{e} (see --help)")
    except SystemExit as e:
        # absl prints the help and exits with status 1; asking for help is not an error.
        if e.code == 1 and any(a.split("=")[0] in HELP_FLAGS for a in argv[1:]):
            sys.exit(0)
        raise


def _help_of(tool):
    """Makes --help describe `tool` (its docstring and flags) when a console script or a
    tools/ shim, not the tool's module itself, is __main__: absl documents __main__ only."""
    main_module = sys.modules.get("__main__")
    if tool is None or main_module is None or tool is main_module:
        return
    if tool.__doc__:
        main_module.__doc__ = tool.__doc__
    for flag in flags.FLAGS.get_key_flags_for_module(tool.__name__):
        flags.FLAGS.register_key_flag_for_module(sys.argv[0], flag)


def run(main, expand_argv=None):
    """Like `absl.app.run(main)`, but flag errors and UserErrors exit with status 2 and one line,
    and TensorFlow starts quietly (stargan_tf/startup.py).

    Args:
      main: the tool's main(argv).
      expand_argv: optional argv -> (argv, error message or None), applied before the flags are
        parsed (e.g. `stargan_tf.recipes.expand_recipe_flags`); an error exits with status 2.
    """
    from stargan_tf import startup

    startup.quiet_tensorflow()
    _help_of(sys.modules.get(main.__module__))

    def guarded_main(argv):
        try:
            return main(argv)
        except UserError as e:
            fail(str(e))

    app.run(guarded_main, flags_parser=lambda argv: _parse_flags(argv, expand_argv))


# The model flags: shared by the converter, training and the configs/*.cfg flagfiles.
TRAINING_DEFAULTS = {
    "img_size": 256,
    "style_dim": 64,
    "latent_dim": 16,
    "max_conv_dim": 512,
    "dim_in": 0,
    "w_hpf": 1.0,
    "decoder": "adain",
}


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
    flags.DEFINE_integer(
        "img_size", v, "Image height and width in pixels, a power of two >= 32" + n, flag_values=f
    )
    v, n = default("style_dim", "64")
    flags.DEFINE_integer("style_dim", v, "Length of the style code s" + n, flag_values=f)
    v, n = default("latent_dim", "16")
    flags.DEFINE_integer("latent_dim", v, "Length of the latent code z" + n, flag_values=f)
    v, n = default("num_domains", "")
    flags.DEFINE_integer(
        "num_domains", v, "Number of domains (training: must match the data)" + n, flag_values=f
    )
    v, n = default("max_conv_dim", "512")
    flags.DEFINE_integer("max_conv_dim", v, "Cap on the channels of any block" + n, flag_values=f)
    v, n = default("dim_in", "2**14 // img_size")
    flags.DEFINE_integer(
        "dim_in",
        v,
        "Channels of the first convolution; 0 = the official "
        "2**14 // img_size; smaller makes CPU-sized models" + n,
        flag_values=f,
    )
    v, n = default("w_hpf", "1 for CelebA-HQ, 0 for AFHQ")
    flags.DEFINE_float(
        "w_hpf",
        v,
        "Weight of the generator's high-pass path (faces); 0 disables "
        "it; converting: read from the file's hpf.filter when present" + n,
        flag_values=f,
    )
    v, n = default("decoder", "adain")
    flags.DEFINE_enum(
        "decoder",
        v,
        ["adain", "modconv"],
        "Generator decoder: adain (the paper's "
        "AdaIN blocks) or modconv (StyleGAN2 modulated convolutions with an RGB skip "
        "stream, for 512 px; no official weights exist for it)" + n,
        flag_values=f,
    )
    flags.DEFINE_list(
        "domain_names",
        [],
        "Domain names in id order: CelebA-HQ female,male; AFHQ cat,dog,wild. "
        "Converting: default domain0,domain1,...; training: must match the data.",
        flag_values=f,
    )


def model_overrides(flag_values=flags.FLAGS):
    """The model fields given on the command line: {field: value or None}, and the domain names."""
    overrides = {field: flag_values[field].value for field in MODEL_FIELDS}
    if overrides["dim_in"] == 0:
        overrides["dim_in"] = None  # 0 = the official 2**14 // img_size
    return overrides, list(flag_values["domain_names"].value)


# The model directory a tool reads: sample, translate, export, evaluate (and the web app).
def define_checkpoint_flags(what="load", flag_values=flags.FLAGS):
    """Defines --checkpoint (a model directory) and --step (None: the latest checkpoint)."""
    flags.DEFINE_string(
        "checkpoint",
        None,
        "Model directory: a training workdir or a converted "
        "official checkpoint (its EMA networks are used when present).",
        flag_values=flag_values,
    )
    flags.DEFINE_integer(
        "step", None, f"Checkpoint step to {what} (default: the latest).", flag_values=flag_values
    )


# The weights and settings of the official evaluation protocol: evaluate, and train's --eval_every.
def define_eval_flags(flag_values=flags.FLAGS):
    """Defines --inception, --inception_weights, --alexnet_weights, --lpips_weights and
    --num_outs_per_domain (empty weight paths: not given)."""
    f = flag_values
    flags.DEFINE_enum(
        "inception",
        "official",
        ["official", "fid"],
        "FID feature extractor: "
        "official (torchvision's ImageNet InceptionV3, as the StarGAN v2 code: the "
        "paper's numbers) or fid (pytorch-fid's FID Inception: comparable across "
        "papers).",
        flag_values=f,
    )
    flags.DEFINE_string(
        "inception_weights",
        "",
        "The Inception weights: torchvision's "
        "inception_v3_google-0cc3c7bd.pth (official) or pytorch-fid's "
        "pt_inception-2015-12-05-6726825d.pth (fid).",
        flag_values=f,
    )
    flags.DEFINE_string(
        "alexnet_weights", "", "torchvision's alexnet-owt-7be5be79.pth (LPIPS).", flag_values=f
    )
    flags.DEFINE_string(
        "lpips_weights", "", "The official metrics/lpips_weights.ckpt (LPIPS).", flag_values=f
    )
    flags.DEFINE_integer(
        "num_outs_per_domain",
        10,
        "Outputs per source image and task in the evaluation (official: 10).",
        flag_values=f,
    )


def config_from_flags(cls, flag_values=flags.FLAGS, **given):
    """A `cls` dataclass whose fields are the flags of the same names, except those `given`.

    Raises:
      AttributeError: a field has no flag of its name (a new field needs its flag).
    """
    import dataclasses

    values = {
        f.name: flag_values[f.name].value for f in dataclasses.fields(cls) if f.name not in given
    }
    return cls(**values, **given)
