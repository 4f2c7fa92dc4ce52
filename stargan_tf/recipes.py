"""The training recipes shipped with the package: flagfiles in stargan_tf/configs/ (NAME.cfg).

`stargan-tf-train --recipe=NAME` reads one as `--flagfile=<its path>` at the place where --recipe
stands, so flags after it override the recipe's values. In a clone, configs/ links to the same
files, so `--flagfile=configs/NAME.cfg` works too.
"""

import os

RECIPES_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs")
SUFFIX = ".cfg"


def names():
    """The recipe names, sorted (e.g. afhq256, afhq512, celeba_hq256, demo)."""
    if not os.path.isdir(RECIPES_DIR):
        return []
    return sorted(n[: -len(SUFFIX)] for n in os.listdir(RECIPES_DIR) if n.endswith(SUFFIX))


def path(name):
    """The flagfile of recipe `name`, or None when there is no such recipe."""
    if name not in names():
        return None
    return os.path.join(RECIPES_DIR, name + SUFFIX)


def expand_recipe_flags(argv):
    """argv with every `--recipe=NAME` (or `--recipe NAME`) followed by `--flagfile=<its path>`.

    Returns (argv, error): error is a one-line message for an unknown or missing name, else None.
    The --recipe flag itself stays, so that the run records which recipe it started from."""
    out, i = [], 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":  # What follows is positional, not flags.
            return out + argv[i:], None
        if arg == "--recipe" or arg.startswith("--recipe="):
            if arg == "--recipe":
                if i + 1 >= len(argv):
                    return argv, f"--recipe needs a name; the recipes are: {', '.join(names())}."
                i += 1
                name = argv[i]
            else:
                name = arg[len("--recipe=") :]
            flagfile = path(name)
            if flagfile is None:
                return argv, (
                    f"--recipe={name}: no such recipe; the recipes are: {', '.join(names())}."
                )
            out += [f"--recipe={name}", f"--flagfile={flagfile}"]
        else:
            out.append(arg)
        i += 1
    return out, None
