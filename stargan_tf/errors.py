"""Errors that mean "the user gave a bad input": tools report them in one line, exit status 2."""


class UserError(ValueError):
    """A bad input (file, directory, flag value); the message names it and says what to do."""


def describe(error, limit=200):
    """A short one-line account of an exception (TensorFlow's are long and start with an
    internal function name): its first line without the `{{function_node ...}}` prefix,
    shortened from the middle, keeping the cause at the end (e.g. "... File too large")."""
    import re

    text = getattr(error, "message", None) or str(error) or type(error).__name__
    text = re.sub(r"\{\{function_node [^}]*\}\}\s*", "", text).strip()
    line = text.splitlines()[0] if text else type(error).__name__
    if len(line) > limit:
        line = line[: limit // 2 - 2] + " … " + line[-(limit // 2 - 2) :]
    return line
