"""The one exception type for bad input: the CLI prints its message in one line and exits with code 1."""

#: how a DataLoader worker's exception reaches the main process: re-raised with its whole traceback as message
_WORKER_PREFIX = "Caught UserError in DataLoader worker process"


def _original_message(message: str) -> str:
    """The worker's own message when ``message`` is the traceback a DataLoader worker sends for a UserError."""
    if not message.startswith(_WORKER_PREFIX):
        return message
    last = [line for line in message.splitlines() if line.strip()][-1]
    return last.split("UserError: ", 1)[-1].strip()


class UserError(Exception):
    """A problem with the user's input (paths, config, data, weights) that the user can fix.

    The message must say what is wrong and what to do about it. A UserError raised in a DataLoader worker keeps
    its message in the main process (where the loader re-raises it with the worker's traceback as text).
    """

    def __init__(self, message: str = "", *args):
        super().__init__(_original_message(str(message)), *args)
