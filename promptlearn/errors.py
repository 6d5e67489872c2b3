"""The one exception type for bad input: the CLI prints its message in one line and exits with code 1."""


class UserError(Exception):
    """A problem with the user's input (paths, config, data, weights) that the user can fix.

    The message must say what is wrong and what to do about it.
    """
