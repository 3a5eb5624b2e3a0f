"""``lash trace ...`` commands, added to the ``lash`` CLI by ``lash_register_commands``.

Rule: imports only click and the standard library at module level; the viewer is imported
when a command runs. Bad input is a one-line ``Error: ...`` and exit code 2, never a traceback.
"""

from __future__ import annotations

from pathlib import Path

import click

__all__ = ["TraceInputError", "trace_group"]


class TraceInputError(click.ClickException):
    """A trace command's input or output file is unusable; exits with code 2."""

    exit_code = 2


@click.group("trace")
def trace_group() -> None:
    """Inspect trace files written by lash-tracing ([plugins.tracing] jsonl = ...)."""


@trace_group.command("view")
@click.argument("file", type=click.Path(dir_okay=True, path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="HTML file to write (default: FILE with the suffix .html).",
)
@click.option("--open", "open_browser", is_flag=True, help="Open the page in a web browser.")
def view(file: Path, output: Path | None, open_browser: bool) -> None:
    """Render the JSONL trace FILE as a self-contained HTML waterfall and print its path.

    One time axis per session: start-up and prepare phases, turns, model call attempts and
    tool calls as bars; click one for its arguments, result, usage and error; search and
    filter by session, turn, kind and status. Works offline; fits a 1280x800 window.
    """
    from lash_tracing._viewer import TraceFileError, build_view, load_trace, render_html

    try:
        records = load_trace(file)
    except TraceFileError as exc:
        raise TraceInputError(str(exc)) from None
    out = output if output is not None else file.with_suffix(".html")
    if out.absolute() == file.absolute():
        raise TraceInputError(f"{out}: the output would overwrite the trace file; pass -o OUT.html")
    page = render_html(build_view(records), title=f"lash trace: {file.name}")
    try:
        out.write_text(page, encoding="utf-8")
    except OSError as exc:
        raise TraceInputError(f"{out}: cannot write: {exc.strerror or exc}") from None
    click.echo(str(out))
    if open_browser:
        import webbrowser  # only for --open: it imports subprocess and shlex

        webbrowser.open(out.resolve().as_uri())
