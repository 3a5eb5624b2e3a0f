"""What the ``lash`` CLI prints, unit by unit: the live view on invalid Unicode, and the one line
each kind of exception becomes (``lash_kernel.cli.errors``)."""

from __future__ import annotations

import contextlib
import errno
import io
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console

from lash_kernel.activity import (
    AssistantProseDelta,
    ReasoningProseDelta,
    ToolCallCompleted,
    ToolCallProgress,
    ToolCallStarted,
    TurnActivity,
)
from lash_kernel.cli.errors import ErrorReport, debug_enabled, describe_error, leaf_errors
from lash_kernel.cli.output import LiveView, echo, one_line
from lash_kernel.errors import (
    CommitConflictError,
    ConfigError,
    CorruptStoreError,
    ProviderHTTPError,
    StoreError,
    StoreFullError,
    StorePermissionError,
)


def activity(event: object, seq: int = 1) -> TurnActivity:
    return TurnActivity(id=f"t:{seq}", correlation_id="t", seq=seq, event=event)  # type: ignore[arg-type]


class StrictStream(io.TextIOWrapper):
    """A UTF-8 text stream that fails on a lone surrogate, as a real terminal stream does."""

    def __init__(self) -> None:
        super().__init__(io.BytesIO(), encoding="utf-8", errors="strict", write_through=True)

    def text(self) -> str:
        self.flush()
        return self.buffer.getvalue().decode("utf-8")  # type: ignore[attr-defined]


@contextlib.contextmanager
def strict_streams() -> Iterator[tuple[StrictStream, StrictStream]]:
    """Replace sys.stdout and sys.stderr (inside the test body: pytest's own capture resets
    them between fixture setup and the call)."""
    out, err = StrictStream(), StrictStream()
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = out, err
    try:
        yield out, err
    finally:
        sys.stdout, sys.stderr = saved


def test_live_view_joins_split_pairs_and_replaces_lone_surrogates() -> None:
    with strict_streams() as (out, err):
        view = LiveView(Console(file=err, highlight=False, soft_wrap=True))
        for seq, text in enumerate(["Hi \ud83d", "\ude00!", " \udcff", " end \ud83d"], start=1):
            view(activity(AssistantProseDelta(text=text), seq))
        view.end()
    assert out.text() == "Hi \U0001f600! \ufffd end \ufffd\n"


def test_live_view_reasoning_and_tool_lines_with_lone_surrogates() -> None:
    with strict_streams() as (_, err):
        view = LiveView(Console(file=err, highlight=False, soft_wrap=True, width=200))
        view(activity(ReasoningProseDelta(text="think \ud83d"), 1))
        view(activity(ReasoningProseDelta(text="\ude00"), 2))
        completed = ToolCallCompleted(call_id="c", name="ls", output="a\udce9b", is_error=False, duration_s=0.5)
        view(activity(completed, 3))
        view.end()
    assert err.text() == "think \U0001f600\n← ls (0.50s): a\ufffdb\n"


def test_live_view_nests_tool_progress_under_its_call() -> None:
    with strict_streams() as (_, err):
        view = LiveView(Console(file=err, highlight=False, soft_wrap=True, width=200))
        view(activity(ToolCallStarted(call_id="c", name="spawn_agent", arguments="{}"), 1))
        progress = ToolCallProgress(call_id="c", name="spawn_agent", progress=1, message="[explore ab] calling ls")
        view(activity(progress, 2))
        view(activity(ToolCallProgress(call_id="c", name="spawn_agent", progress=2), 3))  # no message: not shown
        view.end()
    assert err.text() == "→ spawn_agent({})\n  ↳ spawn_agent: [explore ab] calling ls\n"


def test_echo_and_one_line_never_fail_on_lone_surrogates() -> None:
    with strict_streams() as (out, _):
        echo("x\udcff")
    assert out.text() == "x\ufffd\n"
    assert one_line("a\n  b\ud800") == "a b\ufffd"
    assert one_line("  ") == "(no detail)"


# ------------------------------------------------------------------------------- errors


def test_lash_errors_keep_their_message_and_config_errors_exit_2() -> None:
    assert describe_error(ConfigError("set OPENAI_API_KEY")).message == "set OPENAI_API_KEY"
    assert describe_error(ConfigError("x")).exit_code == 2
    report = describe_error(ProviderHTTPError(500, "down", provider="openai"))
    assert report.exit_code == 1 and not report.internal and "HTTP 500" in report.message


def test_os_errors_say_what_happened() -> None:
    assert describe_error(OSError(errno.ENOSPC, "No space left on device")).message == "disk full"
    assert describe_error(OSError(errno.ENOSPC, "No space", "/d/x.db")).message == "disk full: /d/x.db"
    assert describe_error(PermissionError(errno.EACCES, "Permission denied", "/etc/x")).message == (
        "permission denied: /etc/x"
    )
    assert describe_error(OSError(errno.EROFS, "Read-only file system", "/ro/x")).message == (
        "read-only file system: /ro/x"
    )
    assert describe_error(FileNotFoundError(errno.ENOENT, "No such file or directory", "/nope")).message == (
        "no such file or directory: /nope"
    )
    assert describe_error(OSError(errno.ENOSPC, "x")).exit_code == 1


def test_store_errors_are_printed_as_the_store_words_them(tmp_path: Path) -> None:
    db = tmp_path / "lash.db"
    denied = StorePermissionError(f"{db}: commit_turn: permission denied: the database file is not writable")
    assert describe_error(denied) == ErrorReport(str(denied), 1)
    full = StoreFullError(f"{db}: commit_turn: disk full")
    assert describe_error(full) == ErrorReport(str(full), 1)
    assert describe_error(CorruptStoreError(f"{db} is corrupt")).message == f"{db} is corrupt"


def test_commit_conflict_says_the_turn_was_not_saved() -> None:
    report = describe_error(CommitConflictError("expected head revision 0, actual 1"))
    assert report.exit_code == 1
    assert report.message.startswith("expected head revision 0, actual 1 (another writer committed")


def test_exception_groups_are_unwrapped() -> None:
    conflict = CommitConflictError("expected head revision 3, actual 4")
    nested = ExceptionGroup("outer", [ExceptionGroup("inner", [conflict])])
    assert list(leaf_errors(nested)) == [conflict]
    assert describe_error(nested) == describe_error(conflict)

    two = ExceptionGroup("two", [StoreError("a"), ConfigError("b"), StoreError("a")])
    report = describe_error(two)
    assert report.message == "a; b" and report.exit_code == 2  # distinct messages, highest code


def test_a_bug_is_never_hidden_behind_a_known_error() -> None:
    group = ExceptionGroup("g", [StoreError("known"), KeyError("boom")])
    report = describe_error(group)
    assert report.internal and report.exit_code == 1
    assert report.message == "internal error: KeyError: 'boom' (set LASH_DEBUG=1 for the traceback)"
    assert describe_error(RuntimeError()).message == "internal error: RuntimeError (set LASH_DEBUG=1 for the traceback)"


def test_messages_are_one_valid_line() -> None:
    report = describe_error(StoreError("line one\n  line two \udcff"))
    assert report.message == "line one line two \ufffd"


@pytest.mark.parametrize(("value", "on"), [("1", True), ("yes", True), ("", False), ("0", False), ("false", False)])
def test_lash_debug(value: str, on: bool) -> None:
    assert debug_enabled({"LASH_DEBUG": value}) is on
    assert debug_enabled({}) is False
