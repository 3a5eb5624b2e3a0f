"""The ``tracing`` entry point (``lash.plugins``): hook implementations and wiring only.

Rule: importing this module is cheap (the ``lash`` CLI imports it even for ``--help``): no
OpenTelemetry, no file access. The work happens in ``TracingPlugin`` (``_sink``), which
``lash_configure`` registers on a core only when ``[plugins.tracing]`` configures an output.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lash_kernel.plugin import hookimpl
from lash_tracing._config import TracingConfig

if TYPE_CHECKING:
    import click

    from lash_kernel.plugin import ConfigRegistrar, PluginHost

#: The name the stateful sink is registered under on each core.
SINK_NAME = "tracing.sink"


@hookimpl
def lash_register_config(registry: ConfigRegistrar) -> None:
    """Declare ``TracingConfig`` as the ``[plugins.tracing]`` table."""
    registry.add(TracingConfig)


@hookimpl
def lash_configure(host: PluginHost, config: TracingConfig | None) -> None:
    """Register a ``TracingPlugin`` on the core when an output is configured; else stay inert.

    Args:
        host: the ``PluginHost`` of the core being built.
        config: the validated ``[plugins.tracing]`` table (defaults when absent).
    Raises:
        OSError: the JSONL file cannot be opened (the kernel reports ``PluginHookError``).
    """
    if config is None or not config.enabled:
        return
    from lash_tracing._sink import TracingPlugin

    sink = TracingPlugin.from_config(config, base_dir=host.config_dir)
    if sink is None:  # pragma: no cover - config.enabled said otherwise
        return
    try:
        host.add_plugin(sink, name=SINK_NAME)
    except BaseException:
        sink.close()
        raise
    sink.attach(host)


@hookimpl
def lash_register_commands(cli: click.Group) -> None:
    """Add ``lash trace view``."""
    from lash_tracing._cli import trace_group

    cli.add_command(trace_group)
