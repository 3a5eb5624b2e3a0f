"""The single-writer lease of a session, as the runtime uses it (DESIGN §5).

Rule: every write to a session's head (a turn's commit, a maintenance commit) is made under
the session's lease, claimed from the store first and fenced inside the commit. A turn claims
it before its input is admitted (a busy session fails at once, before any model call), keeps
it renewed while it runs and releases it after its commit; a maintenance commit claims it
for the length of its one transaction, waiting while a turn holds it.

A lease left behind by a process that died on this machine is released at once (its pid is
gone), so a crashed process never locks its sessions out for the lease's lifetime; a lease of
a process on another machine is reclaimed when it expires.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Callable

import anyio

from lash_kernel.errors import LeaseLostError, SessionBusyError, StoreError
from lash_kernel.runtime._state import TurnRuntime
from lash_kernel.store.base import Lease

__all__ = ["claim", "claim_waiting", "keep_renewed", "owner_name", "release"]

_log = logging.getLogger("lash")


def owner_name() -> str:
    """This process as a lease owner: ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _dead_here(owner: str) -> bool:
    """True when ``owner`` names a process on this machine that no longer exists."""
    host, _, pid_text = owner.rpartition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # exists, but not ours to signal
        return False
    return False


def claim(rt: TurnRuntime, session_id: str) -> Lease:
    """Claim ``session_id``'s lease now, for ``rt.lease_ttl_s`` seconds.

    Raises:
        SessionBusyError: another live writer holds it.
        SessionNotFoundError, StoreError: from the store.
    """
    store, token = rt.store, uuid.uuid4().hex
    try:
        return store.claim_lease(session_id, owner=rt.owner, token=token, ttl_s=rt.lease_ttl_s, now=rt.clock())
    except SessionBusyError:
        held = store.get_lease(session_id)
        if held is None or not _dead_here(held.owner):
            raise
    _log.warning("session %s: releasing the lease of %s, a process that is gone", session_id, held.owner)
    store.release_lease(held)
    return store.claim_lease(session_id, owner=rt.owner, token=token, ttl_s=rt.lease_ttl_s, now=rt.clock())


async def claim_waiting(rt: TurnRuntime, session_id: str, *, timeout_s: float | None = None) -> Lease:
    """Claim the lease, waiting (with backoff, up to 1 s between tries) while another writer
    holds it.

    Args:
        rt: the runtime.
        session_id: the session.
        timeout_s: longest wait in seconds; default twice the lease lifetime (a dead holder's
            lease has expired by then).
    Raises:
        SessionBusyError: still busy after ``timeout_s``.
    """
    deadline = anyio.current_time() + (timeout_s if timeout_s is not None else 2 * rt.lease_ttl_s)
    delay = 0.02
    while True:
        try:
            return claim(rt, session_id)
        except SessionBusyError:
            if anyio.current_time() + delay > deadline:
                raise
        await anyio.sleep(delay)
        delay = min(delay * 2, 1.0)


def release(rt: TurnRuntime, lease: Lease) -> None:
    """Release ``lease``; a store failure is logged (the lease then expires on its own)."""
    try:
        rt.store.release_lease(lease)
    except StoreError as exc:
        _log.error("session %s: could not release its lease: %s", lease.session_id, exc)


async def keep_renewed(rt: TurnRuntime, lease: Lease, on_lost: Callable[[str], None]) -> None:
    """Renew ``lease`` every third of its lifetime until cancelled.

    Args:
        rt: the runtime.
        lease: the held lease.
        on_lost: called once with a reason when the lease was lost (then this returns).
    """
    interval = rt.lease_ttl_s / 3
    while True:
        await anyio.sleep(interval)
        try:
            rt.store.renew_lease(lease, ttl_s=rt.lease_ttl_s, now=rt.clock())
        except LeaseLostError as exc:
            on_lost(f"the session's lease was lost: {exc}")
            return
        except StoreError as exc:  # keep trying: the commit's fencing check decides
            _log.error("session %s: could not renew its lease: %s", lease.session_id, exc)
