"""The one exception type rcstat raises for bad input; the CLI prints it as one line."""

from __future__ import annotations


class RCStatError(ValueError):
    """A problem the user can fix (bad input, missing model, unsupported architecture).

    A :class:`ValueError` (bad values are what it reports), so a caller's ``except ValueError`` catches it.

    ``option`` names the library option the problem is about (``top_k``, ``profile``…), so that a
    front end can point at its own spelling of it (the CLI adds ``--top-k``); the message itself
    speaks the library's terms.
    """

    def __init__(self, message: str, *, option: str | None = None) -> None:
        super().__init__(message)
        self.option = option

    def __reduce__(self):  # pickled whole (from a Ray worker), ``option`` included
        return _rebuild, (str(self), self.option)


def _rebuild(message: str, option: str | None) -> RCStatError:
    return RCStatError(message, option=option)


class RCStatWarning(UserWarning):
    """Something rcstat did differently from what was asked (clamped, skipped, the first of several);
    the CLI prints it as one line on stderr."""


def warn(message: str) -> None:
    """Issue an :class:`RCStatWarning` (a library user can filter or record it with ``warnings``)."""
    import warnings

    warnings.warn(message, RCStatWarning, stacklevel=2)
