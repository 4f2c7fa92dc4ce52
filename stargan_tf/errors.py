"""Errors that mean "the user gave a bad input": tools report them in one line, exit status 2."""


class UserError(ValueError):
    """A bad input (file, directory, flag value); the message names it and says what to do."""
