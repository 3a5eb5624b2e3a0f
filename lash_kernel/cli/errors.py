"""How the ``lash`` CLI turns an exception into one ``error: ...`` line and an exit code.

Rule: a user never sees a traceback for something that is not a bug. ``describe_error`` maps

- ``ConfigError`` to its message, exit 2 (bad flags, environment or ``lash.toml``);
- any other ``LashError`` to its message, exit 1 (stores word their own disk errors:
  ``StorePermissionError`` and ``StoreFullError`` name the path and say "permission denied" or
  "disk full"); a ``CommitConflictError`` says that another writer won and the turn was not
  saved, a ``SessionBusyError`` that another writer is running a turn on the session, a
  ``LeaseLostError`` that another writer took the session over and the turn was not saved;
- an ``OSError`` to ``disk full``, ``permission denied: PATH``, ``read-only file system: PATH``
  or ``<reason>: PATH``, exit 1;
- an ``ExceptionGroup`` (a task group around the real error) to its leaves, unwrapped;
- anything else (a bug) to ``internal error: <Type>: <message>``, exit 1, with a hint to set
  ``LASH_DEBUG=1``, which also prints the traceback.

Nothing here prints except ``report_error``, which writes the line to stderr.
"""

from __future__ import annotations

import errno
import os
import sys
import traceback
from collections.abc import Iterator, Mapping

import attrs
import click

from lash_kernel.config import env_var
from lash_kernel.errors import CommitConflictError, ConfigError, LashError, LeaseLostError, SessionBusyError
from lash_kernel.text import valid_text

__all__ = ["DEBUG_ENV", "ErrorReport", "debug_enabled", "describe_error", "leaf_errors", "report_error"]

#: Set to ``1`` to print the traceback of every error the CLI reports.
DEBUG_ENV = env_var("LASH_DEBUG")

_DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
_PERMISSION = frozenset({errno.EACCES, errno.EPERM})


@attrs.frozen
class ErrorReport:
    """What the CLI prints for an exception.

    Attributes:
        message: the text after ``error: `` (one line, valid Unicode).
        exit_code: 2 for configuration errors, 1 for everything else.
        internal: True when the exception is a bug (not a ``LashError`` or ``OSError``).
    """

    message: str
    exit_code: int
    internal: bool = False


def leaf_errors(exc: BaseException) -> Iterator[BaseException]:
    """The exceptions inside ``exc``: its leaves if it is an exception group (depth first, in
    order), else ``exc`` itself."""
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            yield from leaf_errors(inner)
    else:
        yield exc


def _os_message(exc: OSError) -> str:
    path = exc.filename
    where = f": {os.fsdecode(path)}" if path is not None else ""
    if exc.errno in _DISK_FULL:
        return f"disk full{where}" if path is not None else "disk full"
    if exc.errno in _PERMISSION:
        return f"permission denied{where or ': ' + (exc.strerror or str(exc))}"
    if exc.errno == errno.EROFS:
        return f"read-only file system{where}"
    reason = exc.strerror or str(exc) or type(exc).__name__
    return f"{reason[:1].lower()}{reason[1:]}{where}"


def _describe_leaf(exc: BaseException) -> ErrorReport:
    if isinstance(exc, ConfigError):
        return ErrorReport(_line(str(exc)), 2)
    if isinstance(exc, CommitConflictError):
        return ErrorReport(_line(f"{exc} (another writer committed to this session first; this turn was not saved)"), 1)
    if isinstance(exc, SessionBusyError):
        return ErrorReport(_line(f"{exc} (another writer is running a turn on this session; try again later)"), 1)
    if isinstance(exc, LeaseLostError):
        return ErrorReport(_line(f"{exc} (another writer took this session over; this turn was not saved)"), 1)
    if isinstance(exc, LashError):
        return ErrorReport(_line(str(exc)), 1)
    if isinstance(exc, OSError):
        return ErrorReport(_line(_os_message(exc)), 1)
    detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return ErrorReport(
        _line(f"internal error: {detail} (set {DEBUG_ENV}=1 for the traceback)"), 1, internal=True
    )


def describe_error(exc: BaseException) -> ErrorReport:
    """The one line and exit code the CLI reports for ``exc``.

    Args:
        exc: an exception that reached a command (``LashError``, ``OSError``, an exception
            group of those, or anything else).
    Returns:
        The report. For a group, the first leaf that is a bug wins (so bugs are never hidden);
        otherwise the first leaf's message, with the other leaves' distinct messages appended
        after ``; ``. The exit code is the highest of the leaves'.
    """
    reports = [_describe_leaf(leaf) for leaf in leaf_errors(exc)]
    if not reports:  # an empty group cannot be built, but stay total
        return _describe_leaf(exc)
    internal = [r for r in reports if r.internal]
    if internal:
        return internal[0]
    messages = list(dict.fromkeys(r.message for r in reports))
    return ErrorReport("; ".join(messages), max(r.exit_code for r in reports))


def debug_enabled(env: Mapping[str, str] | None = None) -> bool:
    """True when ``LASH_DEBUG`` is set to something other than empty, ``0`` or ``false``."""
    value = (os.environ if env is None else env).get(DEBUG_ENV, "")
    return value.strip().lower() not in ("", "0", "false", "no")


def report_error(exc: BaseException) -> ErrorReport:
    """Print ``error: <message>`` for ``exc`` on one stderr line (after the traceback when
    ``LASH_DEBUG`` is set) and return the report; the caller exits with its code or goes on."""
    report = describe_error(exc)
    if debug_enabled():
        traceback.print_exception(exc, file=sys.stderr)
    click.echo(f"error: {report.message}", err=True)
    return report


def _line(text: str) -> str:
    return valid_text(" ".join(text.split())) or "(no detail)"
