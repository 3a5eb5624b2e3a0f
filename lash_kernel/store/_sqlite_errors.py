"""What a SQLite failure means: the precise ``StoreError`` for an ``sqlite3`` or OS error.

Rule: the store decides the wording, once, so hosts and the CLI print it as it is: a corrupt
file is ``CorruptStoreError``, a full disk ``StoreFullError``, a permission problem (read-only
file, directory or file system) ``StorePermissionError`` naming the path at fault. The file
system is consulted only after SQLite has failed, never on the happy path.
"""

from __future__ import annotations

import os
from pathlib import Path

from lash_kernel.errors import CorruptStoreError, StoreError, StoreFullError, StorePermissionError

__all__ = ["SQLITE_BUSY", "SQLITE_LOCKED", "store_error"]

# Primary SQLite result codes (``sqlite3.Error.sqlite_errorcode`` may carry an extended code in
# its high bits; the low byte is the primary code).
_SQLITE_PERM, SQLITE_BUSY, SQLITE_LOCKED, _SQLITE_READONLY, _SQLITE_IOERR = 3, 5, 6, 8, 10
_SQLITE_CORRUPT, _SQLITE_FULL, _SQLITE_CANTOPEN = 11, 13, 14
_SQLITE_AUTH, _SQLITE_NOTADB = 23, 26


def _access_problem(path: Path) -> tuple[bool, str] | None:
    """Why ``path`` cannot be opened for reading and writing, judged from the file system.

    Returns:
        ``(is_permission, reason)``, or None when nothing visible is wrong. Never raises.
    """
    directory = path.absolute().parent
    try:
        if not directory.is_dir():
            return False, f"the directory {directory} does not exist"
        if not os.access(directory, os.X_OK):
            return True, f"the directory {directory} cannot be entered"
        if path.is_dir():
            return False, "it is a directory, not a database file"
        if path.exists():
            if not os.access(path, os.R_OK):
                return True, "the database file cannot be read"
            if not os.access(path, os.W_OK):
                return True, "the database file is not writable"
        for suffix in ("-wal", "-shm", "-journal"):
            sidecar = path.with_name(path.name + suffix)
            if sidecar.exists() and not os.access(sidecar, os.R_OK | os.W_OK):
                return True, f"{sidecar} is not writable"
        if not os.access(directory, os.W_OK):
            return True, (
                f"the directory {directory} is not writable (SQLite creates {path.name}-wal and "
                f"{path.name}-shm beside the database)"
            )
    except OSError as exc:
        return isinstance(exc, PermissionError), str(exc)
    return None


def _disk_is_full(path: Path) -> bool:
    """True when the file system holding ``path`` (or its nearest existing parent) has no space
    left. SQLite reports a full disk as an I/O or open error when the WAL index cannot grow."""
    for candidate in (path, *path.absolute().parents):
        try:
            st = os.statvfs(candidate)
        except OSError:
            continue
        return st.f_blocks > 0 and st.f_bavail == 0
    return False


def store_error(exc: BaseException, path: Path, operation: str, *, memory: bool = False) -> StoreError:
    """The precise ``StoreError`` for a failure of ``operation`` on the database at ``path``.

    Corrupt or non-database files give ``CorruptStoreError``; a full disk ``StoreFullError``;
    a permission problem (read-only file, directory or file system) ``StorePermissionError``
    naming the path at fault; text SQLite cannot store (a lone surrogate in an id) a
    ``StoreError`` saying so; anything else a ``StoreError`` with SQLite's message.
    """
    text = str(exc)
    if isinstance(exc, UnicodeEncodeError):
        return StoreError(
            f"{path}: {operation} failed: text is not valid Unicode (a lone surrogate at position "
            f"{exc.start} of {exc.object[max(0, exc.start - 20) : exc.end + 20]!r}); SQLite can store only UTF-8"
        )
    if isinstance(exc, PermissionError):
        return StorePermissionError(f"{path}: {operation}: permission denied: {text}")
    code = getattr(exc, "sqlite_errorcode", None)
    code = code & 0xFF if isinstance(code, int) else None
    if code in (_SQLITE_CORRUPT, _SQLITE_NOTADB) or "malformed" in text or "not a database" in text:
        return CorruptStoreError(f"{path} is not a SQLite database (or it is corrupt): {operation}: {text}")
    if code == _SQLITE_FULL or (code in (_SQLITE_IOERR, _SQLITE_CANTOPEN) and not memory and _disk_is_full(path)):
        return StoreFullError(f"{path}: {operation} failed: disk full ({text}); nothing was written")
    if code in (_SQLITE_PERM, _SQLITE_READONLY, _SQLITE_CANTOPEN, _SQLITE_AUTH) and not memory:
        problem = _access_problem(path)
        if problem is not None:
            is_permission, reason = problem
            if is_permission:
                return StorePermissionError(f"{path}: {operation}: permission denied: {reason} ({text})")
            return StoreError(f"{path}: {operation} failed: {reason} ({text})")
        if code in (_SQLITE_PERM, _SQLITE_READONLY, _SQLITE_AUTH):
            return StorePermissionError(f"{path}: {operation}: permission denied: {text}")
    return StoreError(f"{path}: {operation} failed: {text}")
