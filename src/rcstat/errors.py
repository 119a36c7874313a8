"""The one exception type rcstat raises for bad input; the CLI prints it as one line."""


class RCStatError(Exception):
    """A problem the user can fix (bad input, missing model, unsupported architecture)."""
