"""How the ``lash`` CLI builds its model client and store from flags and the environment.

Rule: no click and no printing here; errors are ``ConfigError`` / ``StoreError`` with a message
saying what to set, which the CLI turns into one line and exit code 2 or 1.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import attrs

from lash_kernel.config import base_url_problem, env_var
from lash_kernel.errors import ConfigError, StoreError

if TYPE_CHECKING:
    from lash_kernel.model import ModelClient
    from lash_kernel.store.base import Store

# ------------------------------------------------------------------------------- providers


@attrs.frozen(kw_only=True)
class ProviderChoice:
    """One ``--provider`` value: where its key comes from and how to build the client.

    Attributes:
        key_env: environment variable holding the API key.
        missing_key: the one-line message shown when the key is missing and no ``--base-url``
            was given (says what to set).
        factory: ``(api_key, base_url) -> ModelClient``; ``api_key`` may be None only when
            ``base_url`` is set; ``base_url`` None means the provider's official endpoint.
        description: one line for ``--help``.
        base_url_env: environment variable holding its base URL (below ``--base-url`` and
            ``base_url`` in ``lash.toml``).
        default_base_url: the official endpoint used when no base URL is given.
        hosts: host names of this provider's official endpoints; a base URL on another
            provider's official host is refused (``check_base_url_owner``).
        compatible_hosts: other providers' official hosts this one can talk to as well.
    """

    key_env: str
    missing_key: str
    factory: Callable[[str | None, str | None], ModelClient]
    description: str
    base_url_env: str
    default_base_url: str
    hosts: frozenset[str] = frozenset()
    compatible_hosts: frozenset[str] = frozenset()


def _openai_chat(api_key: str | None, base_url: str | None) -> ModelClient:
    from lash_kernel.providers.openai_chat import OPENAI_BASE_URL, OpenAIChatProvider

    return OpenAIChatProvider(api_key=api_key, base_url=base_url or OPENAI_BASE_URL)


def _openrouter(api_key: str | None, base_url: str | None) -> ModelClient:
    from lash_kernel.providers.openai_chat import OPENROUTER_BASE_URL, OpenAIChatProvider

    return OpenAIChatProvider(
        api_key=api_key, base_url=base_url or OPENROUTER_BASE_URL, provider_name="openrouter"
    )


def _openai_responses(api_key: str | None, base_url: str | None) -> ModelClient:
    from lash_kernel.providers.openai_responses import OpenAIResponsesProvider

    if base_url:
        return OpenAIResponsesProvider(api_key=api_key, base_url=base_url)
    return OpenAIResponsesProvider(api_key=api_key)


def _anthropic(api_key: str | None, base_url: str | None) -> ModelClient:
    from lash_kernel.providers.anthropic import AnthropicProvider

    if base_url:
        return AnthropicProvider(api_key=api_key, base_url=base_url)
    return AnthropicProvider(api_key=api_key)


#: Every ``--provider`` value, in ``--help`` order. Add a provider here and nowhere else.
PROVIDERS: Mapping[str, ProviderChoice] = {
    "openai": ProviderChoice(
        key_env=env_var("OPENAI_API_KEY"),
        missing_key="set OPENAI_API_KEY, or pass --base-url for a local OpenAI-compatible server",
        factory=_openai_chat,
        description="OpenAI Chat Completions, or any OpenAI-compatible server with --base-url",
        base_url_env=env_var("OPENAI_BASE_URL"),
        default_base_url="https://api.openai.com/v1",
        hosts=frozenset({"api.openai.com"}),
        compatible_hosts=frozenset({"openrouter.ai"}),  # OpenRouter speaks Chat Completions
    ),
    "openai-responses": ProviderChoice(
        key_env=env_var("OPENAI_API_KEY"),
        missing_key="set OPENAI_API_KEY, or pass --base-url for a Responses-compatible server",
        factory=_openai_responses,
        description="the OpenAI Responses API",
        base_url_env=env_var("OPENAI_BASE_URL"),
        default_base_url="https://api.openai.com/v1",
        hosts=frozenset({"api.openai.com"}),
    ),
    "anthropic": ProviderChoice(
        key_env=env_var("ANTHROPIC_API_KEY"),
        missing_key="set ANTHROPIC_API_KEY, or pass --base-url for an Anthropic-compatible proxy",
        factory=_anthropic,
        description="the Anthropic Messages API",
        base_url_env=env_var("ANTHROPIC_BASE_URL"),
        default_base_url="https://api.anthropic.com",
        hosts=frozenset({"api.anthropic.com"}),
    ),
    "openrouter": ProviderChoice(
        key_env=env_var("OPENROUTER_API_KEY"),
        missing_key="set OPENROUTER_API_KEY, or choose another --provider",
        factory=_openrouter,
        description="OpenRouter (OpenAI-compatible)",
        base_url_env=env_var("OPENROUTER_BASE_URL"),
        default_base_url="https://openrouter.ai/api/v1",
        hosts=frozenset({"openrouter.ai"}),
    ),
}


def base_url_owners(url: str) -> list[str]:
    """The providers whose official host ``url`` is on, or ``[]`` for any other (custom) host.

    Args:
        url: a base URL that passed ``check_base_url``.
    Returns:
        Provider names in ``PROVIDERS`` order, e.g. ``["openai", "openai-responses"]`` for
        ``https://api.openai.com/v1``.
    """
    host = (urlsplit(url).hostname or "").lower().rstrip(".")
    return [name for name, choice in PROVIDERS.items() if host in choice.hosts]


def check_base_url_owner(provider: str, url: str, *, source: str = "--base-url") -> str:
    """Refuse a base URL on another provider's official host (``api.openai.com`` with
    ``anthropic``, ``api.anthropic.com`` with ``openai``, ...). Custom hosts are accepted.

    Args:
        provider: the chosen provider (a key of ``PROVIDERS``).
        url: the base URL.
        source: where the URL came from, for the message (``--base-url``,
            ``lash.toml key 'base_url'``, ``ANTHROPIC_BASE_URL``).
    Returns:
        ``url`` unchanged.
    Raises:
        ConfigError: one line naming both providers, e.g. ``base_url 'https://api.openai.com/v1'
        (from lash.toml ...) is the openai API, but the provider is anthropic; ...``.
    """
    owners = base_url_owners(url)
    choice = PROVIDERS.get(provider)
    host = (urlsplit(url).hostname or "").lower().rstrip(".")
    if owners and provider not in owners and not (choice is not None and host in choice.compatible_hosts):
        raise ConfigError(
            f"base_url {url!r} (from {source}) is the {' / '.join(owners)} API, but the provider is "
            f"{provider}: pass --provider {owners[0]}, or remove or change the base URL"
        )
    return url


def resolve_base_url(
    provider: str, flag: str | None, config_url: str | None, env: Mapping[str, str], *, config_source: str = "lash.toml"
) -> tuple[str | None, str]:
    """The base URL to use and where it came from: ``--base-url`` > ``base_url`` in
    ``lash.toml`` > the provider's ``*_BASE_URL`` variable > None (its official endpoint).

    Args:
        provider: the chosen provider (a key of ``PROVIDERS``).
        flag: ``--base-url``, or None.
        config_url: ``base_url`` from ``lash.toml``, or None.
        env: the environment.
        config_source: how to name the config file in messages.
    Returns:
        ``(url, source)``; ``url`` None means the provider's default, then ``source`` is
        ``"default"``.
    Raises:
        ConfigError: the environment's URL is not an http(s) URL, or the URL chosen is another
            provider's official endpoint (``check_base_url_owner``).
    """
    choice = PROVIDERS.get(provider)
    env_name = choice.base_url_env if choice is not None else ""
    if flag:
        url, source = flag, "--base-url"
    elif config_url:
        url, source = config_url, f"{config_source} key 'base_url'"
    elif env_name and env.get(env_name):
        url, source = env[env_name], env_name
        check_base_url(url, source=source)
    else:
        return None, "default"
    if choice is not None:
        check_base_url_owner(provider, url, source=source)
    return url, source


def default_provider(base_url: str | None, env: Mapping[str, str]) -> str:
    """The provider used when ``--provider`` is not given.

    Args:
        base_url: the ``--base-url`` value, or None.
        env: the environment (``os.environ`` in the CLI).
    Returns:
        ``openrouter`` when ``OPENROUTER_API_KEY`` is set and no base URL was given, else ``openai``.
    """
    return "openrouter" if env.get("OPENROUTER_API_KEY") and not base_url else "openai"


def check_provider(name: str, base_url: str | None, env: Mapping[str, str]) -> ProviderChoice:
    """Validate ``--provider name`` without building anything (no client, no I/O).

    Args:
        name: a key of ``PROVIDERS``.
        base_url: the ``--base-url`` value, or None.
        env: the environment to read keys from.
    Returns:
        The provider's ``ProviderChoice``.
    Raises:
        ConfigError: unknown provider, or no key and no base URL. The message says what to set.
    """
    choice = PROVIDERS.get(name)
    if choice is None:
        raise ConfigError(f"unknown provider {name!r}: choose one of {', '.join(PROVIDERS)}")
    if not (env.get(choice.key_env) or base_url):
        raise ConfigError(choice.missing_key)
    return choice


def check_base_url(url: str, *, source: str = "--base-url") -> str:
    """Validate a provider base URL before anything is built or sent.

    Args:
        url: the value given, e.g. ``http://127.0.0.1:8080/v1``.
        source: how the error names where the value came from (``--base-url``, or
            ``<file> key 'base_url'``).
    Returns:
        ``url`` unchanged.
    Raises:
        ConfigError: not an absolute ``http``/``https`` URL with a host (and a valid port),
            e.g. ``--base-url: 'ftp://x' is not an http(s) URL; give the API root, ...``.
    """
    problem = base_url_problem(url)
    if problem is not None:
        raise ConfigError(f"{source}: {url!r} {problem}; give the API root, e.g. http://127.0.0.1:8080/v1")
    return url


def build_provider(name: str, base_url: str | None, env: Mapping[str, str]) -> ModelClient:
    """Build the model client for ``--provider name``.

    With a base URL the key is optional (local servers such as llama.cpp need none); when it is
    set it is sent to that server. The caller owns the client and must ``await client.aclose()``.

    Args:
        name: a key of ``PROVIDERS``.
        base_url: API root of a compatible server, e.g. ``http://127.0.0.1:8080/v1``, or None
            for the provider's official endpoint.
        env: the environment to read keys from (``os.environ`` in the CLI).
    Returns:
        The provider.
    Raises:
        ConfigError: unknown provider, no key and no base URL, or an invalid base URL (the
            provider's own check). The message says what to set.
    """
    choice = check_provider(name, base_url, env)
    return choice.factory(env.get(choice.key_env) or None, base_url or None)


# ------------------------------------------------------------------------------- store


def default_db_path(env: Mapping[str, str]) -> Path:
    """The default database file: ``$XDG_DATA_HOME/lash/lash.db`` or ``~/.local/share/lash/lash.db``.

    Args:
        env: the environment; a relative ``XDG_DATA_HOME`` is ignored, as the XDG spec says.
    Returns:
        The path (not created).
    """
    xdg = env.get(env_var("XDG_DATA_HOME"), "")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".local" / "share"
    return base / "lash" / "lash.db"


def open_store(
    path: Path | str,
    *,
    create: bool = True,
    allow: Iterable[str] | None = None,
    block: Iterable[str] = (),
    strict: bool = False,
) -> Store:
    """Open the store at ``path``: a SQLite file, or a store URL (``sqlite:///abs/path.db``,
    ``postgresql://…`` with lash-postgres installed).

    Args:
        path: the database file (``~`` is expanded), or a URL (a ``str``; see
            ``lash_kernel.runtime.stores.store_scheme``).
        create: create the file (and its parent directories) if missing. With False a missing
            file opens as an empty, read-only-in-practice ``MemoryStore``, so read commands never
            create files. A URL is opened as is (its store decides).
        allow, block, strict: which installed plugins may declare URL schemes (as ``LashCore``'s;
            the CLI passes ``core_options``' selection).
    Returns:
        The store; the caller closes it.
    Raises:
        ConfigError: a URL whose scheme no loaded plugin declared (the known ones are named).
        SchemaVersionError: the file was written by a newer lash.
        CorruptStoreError: the file is not a (readable) lash database.
        StoreError: the file or its directory cannot be created or opened.
    """
    from lash_kernel.runtime.stores import open_store_target, sqlite_path, store_scheme

    text = os.fspath(path)
    scheme = store_scheme(text)
    if scheme == "sqlite" and sqlite_path(text) != ":memory:":
        path = Path(sqlite_path(text))  # the same file rules as a plain path
    elif scheme is not None:
        return open_store_target(text, allow=allow, block=block, strict=strict)
    path = Path(path).expanduser()
    if not create and not path.exists():
        from lash_kernel.store.memory import MemoryStore

        return MemoryStore()
    if create:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the directory for {path}: {exc}") from exc
    return open_store_target(path)
