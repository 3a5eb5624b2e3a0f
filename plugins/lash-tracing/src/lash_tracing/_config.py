"""``[plugins.tracing]`` in ``lash.toml``: the plugin's configuration class.

Rule: attrs only; importing this module must stay cheap (the ``lash`` CLI imports it for
``--help``).
"""

from __future__ import annotations

from typing import Literal

import attrs

__all__ = ["OTEL_EXPORTERS", "TracingConfig"]

#: Accepted values of ``otel_exporter``.
OTEL_EXPORTERS = ("none", "console", "otlp")


@attrs.frozen(kw_only=True)
class TracingConfig:
    """Configuration of the ``tracing`` plugin (``[plugins.tracing]`` in ``lash.toml``).

    With the defaults (no ``jsonl``, ``otel_exporter = "none"``) the plugin stays inert: it
    registers nothing and costs nothing per turn.

    Attributes:
        jsonl: path of the JSONL trace file, appended to (created with missing parent
            directories); ``~`` is expanded, a relative path is relative to the ``lash.toml``
            directory (the current directory when configured in code). None writes no file.
        otel_exporter: ``none``, ``console`` (OTel JSON spans on stderr) or ``otlp``
            (OTLP/protobuf over HTTP to ``otlp_endpoint``).
        otlp_endpoint: full OTLP/HTTP traces URL, e.g. ``http://localhost:4318/v1/traces``;
            None uses ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` / ``OTEL_EXPORTER_OTLP_ENDPOINT`` or
            the OTel default. Only used with ``otel_exporter = "otlp"``.
        service_name: OTel resource ``service.name``.
        capture_content: put tool arguments and results (redacted) into OTel span attributes
            (``gen_ai.tool.call.arguments`` / ``.result``). The JSONL file always keeps them.

    Raises:
        ValueError: ``otel_exporter`` is not one of ``OTEL_EXPORTERS`` (when built in code; the
            kernel reports a bad ``lash.toml`` value as ``ConfigError``).
    """

    jsonl: str | None = None
    otel_exporter: Literal["none", "console", "otlp"] = attrs.field(
        default="none", validator=attrs.validators.in_(OTEL_EXPORTERS)
    )
    otlp_endpoint: str | None = None
    service_name: str = "lash"
    capture_content: bool = False

    @property
    def enabled(self) -> bool:
        """True when something is configured (a JSONL path or an OTel exporter)."""
        return bool(self.jsonl) or self.otel_exporter != "none"
