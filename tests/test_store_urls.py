"""Stores by URL (0.3): ``LashCore(store="…")``, ``lash.toml``'s ``store``, ``--db`` / ``LASH_DB``,
and the ``lash_register_stores`` hook a store plugin declares its URL schemes through."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from lash_kernel import ConfigError, LashCore, MemoryStore, SqliteStore
from lash_kernel.cli.app import cli
from lash_kernel.config import load_config, store_scheme
from lash_kernel.plugin import StoreRegistrar, hookimpl
from lash_kernel.runtime.stores import sqlite_path
from lash_kernel.testing import ScriptedModel


def _core(store: object, **kw: object) -> LashCore:
    return LashCore(model_client=ScriptedModel(), model="m", store=store, entry_points=False, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("target", "scheme"),
    [
        ("lash.db", None),
        ("/var/lib/lash.db", None),
        (":memory:", None),
        ("dir/a:b.db", None),
        ("sqlite:///tmp/x.db", "sqlite"),
        ("SQLite:rel.db", "sqlite"),
        ("postgresql://u@h/db", "postgresql"),
        ("memory://", "memory"),
    ],
)
def test_store_scheme_tells_urls_from_paths(target: str, scheme: str | None) -> None:
    assert store_scheme(target) == scheme


def test_sqlite_urls_name_files() -> None:
    assert sqlite_path("sqlite:///abs/x.db") == "/abs/x.db"
    assert sqlite_path("sqlite://localhost/abs/x.db") == "/abs/x.db"
    assert sqlite_path("sqlite:rel.db") == "rel.db"
    assert sqlite_path("sqlite://:memory:") == ":memory:"
    with pytest.raises(ConfigError, match=r"sqlite:///absolute/path\.db"):
        sqlite_path("sqlite://otherhost/x.db")


def test_core_opens_a_sqlite_url_and_a_plain_path(tmp_path: Path) -> None:
    for target in (f"sqlite://{tmp_path}/a.db", str(tmp_path / "b.db")):
        with _core(target) as core:
            assert isinstance(core.store, SqliteStore)
            core.session("s1")
        assert SqliteStore(core.store.path).get_session("s1").session_id == "s1"
    assert (tmp_path / "a.db").exists() and (tmp_path / "b.db").exists()
    with _core("memory://") as core:
        assert isinstance(core.store, MemoryStore)


def test_unknown_scheme_is_a_config_error_naming_the_known_ones() -> None:
    with pytest.raises(ConfigError) as info:
        _core("redis://localhost/0")
    assert "'redis'" in str(info.value) and "known store schemes: memory, sqlite" in str(info.value)


class _FakeStores:
    """A third-party store plugin: declares ``fake`` and records the URLs it opened."""

    def __init__(self) -> None:
        self.opened: list[str] = []

    @hookimpl
    def lash_register_stores(self, registry: StoreRegistrar) -> None:
        def opener(url: str) -> MemoryStore:
            self.opened.append(url)
            return MemoryStore()

        registry.add("fake", opener, "a test store")


def test_a_plugin_declares_a_scheme_and_the_core_opens_through_it() -> None:
    plugin = _FakeStores()
    with _core("FAKE://host/x", plugins=[plugin]) as core:
        assert isinstance(core.store, MemoryStore)
    assert plugin.opened == ["FAKE://host/x"]


def test_a_scheme_taken_by_another_plugin_is_refused() -> None:
    stores: dict = {}
    StoreRegistrar(stores, "one").add("fake", MemoryStore)
    with pytest.raises(ConfigError, match="conflicts with plugin 'one'"):
        StoreRegistrar(stores, "two").add("fake", MemoryStore)
    with pytest.raises(ConfigError, match="not a URL scheme"):
        StoreRegistrar(stores, "two").add("no scheme", MemoryStore)


def test_lash_toml_keeps_a_url_as_written_and_resolves_a_path(tmp_path: Path) -> None:
    (tmp_path / "lash.toml").write_text('store = "postgresql://u@h/db"\n')
    assert load_config(tmp_path / "lash.toml").store == "postgresql://u@h/db"
    (tmp_path / "lash.toml").write_text('store = "rel.db"\n')
    assert load_config(tmp_path / "lash.toml").store == str(tmp_path / "rel.db")


def test_cli_reads_a_sqlite_url_from_db_and_lash_db(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path}/cli.db"
    with _core(url) as core:
        core.session("from-core")
    runner = CliRunner()
    for args, env in ((["--db", url], {}), ([], {"LASH_DB": url})):
        result = runner.invoke(cli, ["sessions", "list", "--json", *args], env={"LASH_PLUGINS": "", **env})
        assert result.exit_code == 0, result.output
        assert [s["session_id"] for s in json.loads(result.stdout)] == ["from-core"]


def test_cli_names_the_known_schemes_for_an_unknown_one(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["sessions", "list", "--db", "redis://h/0"], env={"LASH_PLUGINS": ""})
    assert result.exit_code == 2
    assert "known store schemes: memory, sqlite" in result.stderr
