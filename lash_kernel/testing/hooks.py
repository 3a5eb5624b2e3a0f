"""HookRecorder: record every hook implementation call a core makes, for assertions in tests.

Built on ``KernelHooks.monitor`` (the one seam every kernel hook call goes through), in the
spirit of pytest's ``pytester`` ``HookRecorder``::

    recorder = HookRecorder(core)
    core.run_sync("hi")
    (call,) = recorder.calls("lash_before_turn")
    assert call.plugin == "myplugin" and call["user_input"].text == "hi"
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    from lash_kernel.runtime.hooks import HookCall, HookCallOutcome, KernelHooks

__all__ = ["HookRecorder", "RecordedCall"]


@attrs.frozen(kw_only=True)
class RecordedCall:
    """One hook implementation call, as ``HookRecorder`` saw it.

    Attributes:
        hook: the hook name, e.g. ``lash_before_turn``.
        plugin: the plugin whose implementation ran.
        kwargs: every argument the kernel offered (``host`` included), by name, read-only.
        result: what it returned (awaited, for an async implementation); None on error.
        exception: what it raised, or None.
        duration_s: wall time in seconds.

    ``call["turn_id"]`` is ``call.kwargs["turn_id"]``.
    """

    hook: str
    plugin: str
    kwargs: Mapping[str, Any]
    result: Any = None
    exception: BaseException | None = None
    duration_s: float = 0.0

    def __getitem__(self, name: str) -> Any:
        """The argument ``name`` of this call. Raises ``KeyError`` for one it was not offered."""
        return self.kwargs[name]


class HookRecorder:
    """Records the hook implementation calls of one or more cores, in the order they finished.

    Args:
        target: a ``LashCore`` (or its ``KernelHooks``) to attach to now, or None to attach
            later with ``attach``.

    Calls are recorded from the moment of attaching: the build hooks (``lash_configure``,
    ``lash_register_*``) already ran inside ``LashCore(...)``. The pytest fixture
    ``hook_recorder`` is attached to every core ``lash_core_factory`` builds in the same test.
    Use it as a context manager, or call ``close()``, to stop recording.
    """

    def __init__(self, target: Any = None) -> None:
        self._calls: list[RecordedCall] = []
        self._undo: list[Callable[[], None]] = []
        if target is not None:
            self.attach(target)

    def attach(self, target: Any) -> HookRecorder:
        """Start recording the hook calls of ``target`` (a ``LashCore`` or ``KernelHooks``).

        Returns:
            self, for chaining.
        Raises:
            TypeError: ``target`` has no hooks to monitor.
        """
        hooks: KernelHooks | None = getattr(target, "hooks", target)
        monitor = getattr(hooks, "monitor", None)
        if monitor is None:
            raise TypeError(f"cannot record the hooks of {target!r}: expected a LashCore or KernelHooks")
        self._undo.append(monitor(after=self._record))
        return self

    def _record(self, call: HookCall, outcome: HookCallOutcome) -> None:
        self._calls.append(
            RecordedCall(
                hook=call.hook,
                plugin=call.plugin,
                kwargs=call.kwargs,
                result=outcome.result,
                exception=outcome.exception,
                duration_s=outcome.duration_s,
            )
        )

    def calls(self, *names: str) -> list[RecordedCall]:
        """The recorded calls of the hooks ``names`` (every hook when none is given), in order."""
        if not names:
            return list(self._calls)
        wanted = set(names)
        return [c for c in self._calls if c.hook in wanted]

    def hooks(self) -> list[str]:
        """The hook name of every recorded call, in order (handy in assertion messages)."""
        return [c.hook for c in self._calls]

    def pop(self, name: str) -> RecordedCall:
        """Remove and return the first recorded call of hook ``name``.

        Raises:
            LookupError: no call of ``name`` is recorded; the message lists the hooks that are.
        """
        for index, call in enumerate(self._calls):
            if call.hook == name:
                return self._calls.pop(index)
        seen = ", ".join(dict.fromkeys(self.hooks())) or "none"
        raise LookupError(f"no recorded call of {name!r}; recorded hooks: {seen}")

    def clear(self) -> None:
        """Forget every recorded call (recording goes on)."""
        self._calls.clear()

    def close(self) -> None:
        """Stop recording (the calls recorded so far stay). Idempotent."""
        while self._undo:
            self._undo.pop()()

    def __enter__(self) -> HookRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __len__(self) -> int:
        return len(self._calls)

    def __repr__(self) -> str:
        return f"<HookRecorder {len(self._calls)} calls>"
