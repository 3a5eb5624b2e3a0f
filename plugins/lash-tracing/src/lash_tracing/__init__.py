"""lash-tracing: a JSONL trace sink, OpenTelemetry export and an HTML trace viewer for lash.

Enable it in ``lash.toml`` (``[plugins.tracing] jsonl = "trace.jsonl"``) or pass a
``TracingPlugin`` to ``LashCore(plugins=[...])``. Importing this package is cheap:
OpenTelemetry is imported only when an OTel export is configured.
"""

from __future__ import annotations

__version__ = "0.2.0"

from lash_tracing._config import OTEL_EXPORTERS, TracingConfig
from lash_tracing._jsonl import JsonlSink
from lash_tracing._redact import REDACTED, redact
from lash_tracing._sink import TracingPlugin
from lash_tracing._viewer import TraceFileError, build_view, load_trace, render_html

__all__ = [
    "OTEL_EXPORTERS",
    "REDACTED",
    "JsonlSink",
    "TraceFileError",
    "TracingConfig",
    "TracingPlugin",
    "__version__",
    "build_view",
    "load_trace",
    "redact",
    "render_html",
]

