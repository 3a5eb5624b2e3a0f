"""lash-tracing: a JSONL trace sink, OpenTelemetry export and an HTML trace viewer for lash.

Enable it in ``lash.toml`` (``[plugins.tracing] jsonl = "trace.jsonl"``) or pass a
``TracingPlugin`` to ``LashCore(plugins=[...])``. Importing this package is cheap:
OpenTelemetry is imported only when an OTel export is configured.
"""

from __future__ import annotations

__version__ = "0.2.0"

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lash_tracing._config import OTEL_EXPORTERS, TracingConfig
    from lash_tracing._jsonl import JsonlSink
    from lash_tracing._redact import REDACTED, redact
    from lash_tracing._sink import TracingPlugin
    from lash_tracing._viewer import TraceFileError, build_view, load_trace, render_html

#: Each public name and its module, imported on first use: the entry point imports this
#: package, and ``lash --help`` imports every installed plugin's entry point.
_EXPORTS = {
    "JsonlSink": "lash_tracing._jsonl",
    "OTEL_EXPORTERS": "lash_tracing._config",
    "REDACTED": "lash_tracing._redact",
    "TraceFileError": "lash_tracing._viewer",
    "TracingConfig": "lash_tracing._config",
    "TracingPlugin": "lash_tracing._sink",
    "build_view": "lash_tracing._viewer",
    "load_trace": "lash_tracing._viewer",
    "redact": "lash_tracing._redact",
    "render_html": "lash_tracing._viewer",
}

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



def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'lash_tracing' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
