"""``TracingPlugin``: the stateful plugin object that receives trace records.

Rule: the hot path (``lash_on_trace_record``) only appends to a buffer under a lock. The
buffer is flushed (JSONL write, OTel span export) when a turn finishes, when a session
closes, when it holds ``max_buffered`` records, and on ``close()``. OpenTelemetry is imported
only when an OTel export is configured.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lash_kernel.plugin import PluginHost, StashKey, TraceRecord, hookimpl
from lash_tracing._config import TracingConfig
from lash_tracing._jsonl import JsonlSink

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

    from lash_tracing._otel import OtelExporter

__all__ = ["FLUSH_KINDS", "TracingPlugin"]

#: Record kinds after which the buffer is flushed.
FLUSH_KINDS = frozenset({"turn.finished", "session.closed"})


class TracingPlugin:
    """Write a core's trace records to a JSONL file and/or export them as OpenTelemetry spans.

    Register it on a core (``LashCore(..., plugins=[TracingPlugin(jsonl="trace.jsonl")])``), or
    let the ``tracing`` entry point build one from ``[plugins.tracing]``. When a core it is
    registered on calls ``lash_configure``, it closes itself when the last such core closes;
    otherwise call ``close()`` (or use it as a context manager).

    Args:
        jsonl: path of the JSONL file to append to (see ``JsonlSink``), or None.
        span_exporter: an OTel ``SpanExporter``; spans go to a private ``TracerProvider``
            (``service.name`` = ``service_name``), exported synchronously at turn end unless
            ``batch_spans``.
        tracer_provider: an OTel ``TracerProvider`` to use instead of ``span_exporter`` (you own
            it: ``close()`` flushes but does not shut it down).
        service_name: OTel ``service.name`` for the provider built for ``span_exporter``.
        capture_content: put tool arguments/results (redacted) into span attributes.
        batch_spans: export spans from a background thread (``BatchSpanProcessor``).
        max_buffered: flush early once this many records are buffered (a very long turn).

    Raises:
        ValueError: nothing to write to (no ``jsonl``, exporter or provider), both an exporter
            and a provider, or ``max_buffered < 1``.
        OSError: the JSONL file cannot be opened.
    """

    def __init__(
        self,
        *,
        jsonl: str | os.PathLike[str] | None = None,
        span_exporter: SpanExporter | None = None,
        tracer_provider: TracerProvider | None = None,
        service_name: str = "lash",
        capture_content: bool = False,
        batch_spans: bool = False,
        max_buffered: int = 10_000,
    ) -> None:
        if jsonl is None and span_exporter is None and tracer_provider is None:
            raise ValueError("TracingPlugin needs a jsonl path, a span_exporter or a tracer_provider")
        if span_exporter is not None and tracer_provider is not None:
            raise ValueError("give a span_exporter or a tracer_provider, not both")
        if max_buffered < 1:
            raise ValueError("max_buffered must be >= 1")
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._pending: list[TraceRecord] = []
        self._max_buffered = max_buffered
        self._attached_key = StashKey[bool]()  # marks, in a core's stash, that this plugin attached
        self._attached = 0  # cores attached and not closed yet
        self._closed = False
        self.jsonl: JsonlSink | None = None
        self.otel: OtelExporter | None = None
        if span_exporter is not None or tracer_provider is not None:
            from lash_tracing._otel import OtelExporter

            self.otel = OtelExporter(
                span_exporter=span_exporter,
                tracer_provider=tracer_provider,
                service_name=service_name,
                capture_content=capture_content,
                batch=batch_spans,
            )
        if jsonl is not None:
            try:
                self.jsonl = JsonlSink(jsonl)
            except BaseException:
                if self.otel is not None:
                    self.otel.close()
                raise

    @classmethod
    def from_config(cls, config: TracingConfig, base_dir: Path | None = None) -> TracingPlugin | None:
        """Build the plugin ``[plugins.tracing]`` asks for.

        Args:
            config: the validated config.
            base_dir: directory a relative ``jsonl`` path is resolved against (the
                ``lash.toml``'s directory, ``host.config_dir``); None for the working directory.
        Returns:
            A new ``TracingPlugin``, or None when nothing is configured (stay inert).
        Raises:
            OSError: the JSONL file cannot be opened.
        """
        if not config.enabled:
            return None
        exporter = None
        if config.otel_exporter != "none":
            from lash_tracing._otel import build_span_exporter

            exporter = build_span_exporter(config.otel_exporter, endpoint=config.otlp_endpoint)
        jsonl = Path(config.jsonl).expanduser() if config.jsonl else None
        if jsonl is not None and base_dir is not None and not jsonl.is_absolute():
            jsonl = base_dir / jsonl
        return cls(
            jsonl=jsonl,
            span_exporter=exporter,
            service_name=config.service_name,
            capture_content=config.capture_content,
            batch_spans=config.otel_exporter == "otlp",
        )

    # ------------------------------------------------------------------ hooks
    @hookimpl
    def lash_configure(self, host: PluginHost) -> None:
        """Attach to the core of ``host`` (see ``attach``)."""
        self.attach(host)

    @hookimpl
    def lash_on_trace_record(self, record: TraceRecord) -> None:
        """Buffer ``record``; flush when its turn finished, its session closed, or the buffer is full.

        Args:
            record: the kernel's trace record.
        Raises:
            OSError: a flush failed to write the JSONL file (the kernel logs it).
        """
        with self._lock:
            if self._closed:
                return
            self._pending.append(record)
            full = len(self._pending) >= self._max_buffered
        if full or record.kind in FLUSH_KINDS:
            self.flush()

    # ------------------------------------------------------------------ lifecycle
    def attach(self, host: PluginHost) -> None:
        """Close this plugin when the core of ``host`` (and every other core it is attached to)
        closes.

        Idempotent per core (a mark in ``host.stash``). Uses ``host.on_close``; a core closing
        while other attached cores are open only flushes.

        Args:
            host: the ``PluginHost`` of a core this plugin is registered on
                (``core.plugin_host`` from host code).
        """
        if host.stash.setdefault(self._attached_key, False):
            return
        host.stash[self._attached_key] = True
        with self._lock:
            self._attached += 1
        host.on_close(self._detach)

    def _detach(self) -> None:
        """One attached core closed: close after the last one, else flush."""
        with self._lock:
            self._attached -= 1
            last = self._attached <= 0
        if last:
            self.close()
        else:
            self.flush()

    def flush(self) -> None:
        """Write buffered records to the JSONL file and export finished turns' spans.

        Raises:
            OSError: the JSONL write failed (the OTel export still ran; the records are dropped).
        """
        with self._flush_lock:
            with self._lock:
                records, self._pending = self._pending, []
            if not records:
                return
            try:
                if self.jsonl is not None:
                    self.jsonl.write(records)
            finally:
                if self.otel is not None:
                    self.otel.feed(records)

    def close(self) -> None:
        """Flush, then close the JSONL file and the OTel provider (unfinished turns are exported
        with their open spans marked ``lash.incomplete``). Idempotent; records arriving later are
        ignored.

        Raises:
            OSError: the final JSONL write failed (everything is closed anyway).
        """
        if self._closed:
            return
        try:
            self.flush()
        finally:
            with self._flush_lock:
                with self._lock:
                    self._closed = True
                    self._pending = []
                if self.jsonl is not None:
                    self.jsonl.close()
                if self.otel is not None:
                    self.otel.close()

    @property
    def closed(self) -> bool:
        """True once ``close()`` ran."""
        return self._closed

    def __enter__(self) -> TracingPlugin:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        sinks = [repr(self.jsonl)] if self.jsonl is not None else []
        if self.otel is not None:
            sinks.append("otel")
        return f"TracingPlugin({', '.join(sinks)}{', closed' if self._closed else ''})"
