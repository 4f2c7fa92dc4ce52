"""Running command-line tools: absl flags, with bad input reported in one line and exit status 2."""

import os
import sys

from absl import app, flags

from stargan_tf.errors import UserError

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
