"""The decoded state of sessions this core served recently, so a new handle on a warm session
(the stateless request-handler pattern: ``with core.session(sid) as s: ...`` per request)
costs O(1) in its history instead of a reload.

Rule: an entry is only ever used after it was validated against the store: by the lease
(the handle's new lease has the fencing number right after the one the entry was last
written under, so nobody else wrote in between) or by one read of the head revision. A
commit by another process moves the head, so the entry is dropped and the session reloaded.
"""

from __future__ import annotations

from collections import OrderedDict

from lash_kernel.runtime._state import SessionState

__all__ = ["StateCache"]


class StateCache:
    """An LRU of ``SessionState`` by session id, bounded by count and by approximate size.

    Args:
        max_sessions: most sessions kept (0 disables the cache).
        max_bytes: most bytes of message text kept, summed over the entries
            (``SessionState.approx_bytes``); the least recently used entries go first.

    Each entry carries the fencing number of the lease it was last written under (-1 when it
    was loaded without one).
    """

    def __init__(self, *, max_sessions: int = 256, max_bytes: int = 64 * 1024 * 1024) -> None:
        self.max_sessions = max_sessions
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, tuple[SessionState, int]] = OrderedDict()

    def get(self, session_id: str) -> tuple[SessionState, int] | None:
        """The entry for ``session_id`` (made most recently used), or None."""
        entry = self._entries.get(session_id)
        if entry is not None:
            self._entries.move_to_end(session_id)
        return entry

    def put(self, session_id: str, state: SessionState, fencing: int) -> None:
        """Keep ``state`` for ``session_id``, written under lease ``fencing``; evict the least
        recently used entries beyond the bounds (never the one just put)."""
        if self.max_sessions <= 0:
            return
        self._entries[session_id] = (state, fencing)
        self._entries.move_to_end(session_id)
        total = sum(s.approx_bytes for s, _ in self._entries.values())
        while len(self._entries) > 1 and (len(self._entries) > self.max_sessions or total > self.max_bytes):
            _, (evicted, _) = self._entries.popitem(last=False)
            total -= evicted.approx_bytes

    def drop(self, session_id: str) -> None:
        """Forget ``session_id`` (its head moved elsewhere). No-op when absent."""
        self._entries.pop(session_id, None)

    def __len__(self) -> int:
        return len(self._entries)
