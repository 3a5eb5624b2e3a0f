"""Configuration you can find (issue 15, item 4): the ``*_BASE_URL`` variables and their
precedence, a base URL that belongs to another provider, and ``docs/configuration.md`` generated
from the config classes and the one table of environment variables."""

from __future__ import annotations

import importlib.util
import re
import runpy
from collections.abc import Iterator
from pathlib import Path

import pytest

from lash_kernel.cli.providers import PROVIDERS, resolve_base_url
from lash_kernel.config import ENVIRONMENT, env_var
from lash_kernel.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "configuration.md"

_spec = importlib.util.spec_from_file_location("lash_test_cli_helpers_config", Path(__file__).with_name("test_cli.py"))
assert _spec is not None and _spec.loader is not None
_cli = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_cli)
FakeOpenAI, lash, MODEL = _cli.FakeOpenAI, _cli.lash, _cli.MODEL
clean_env = _cli.clean_env  # autouse: no real keys, no *_BASE_URL, no user config

DEAD = "http://127.0.0.1:9/v1"  # the discard port: nothing listens there


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI()
    fake.thread.start()
    try:
        yield fake
    finally:
        fake.server.shutdown()
        fake.server.server_close()
        fake.thread.join(timeout=5)


# ------------------------------------------------------------------------------- base URLs


def test_openai_base_url_from_the_environment_is_used(server, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", server.url)
    server.text("from env")
    result = lash("run", "--model", MODEL, "--db", str(tmp_path / "a.db"), "hi")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("from env")
    assert len(server.bodies) == 1 and "authorization" not in server.headers[0]  # no key needed


def test_precedence_flag_then_lash_toml_then_environment(server, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OPENAI_BASE_URL", DEAD)
    (tmp_path / "lash.toml").write_text(f'base_url = "{server.url}"\nmodel = "{MODEL}"\n')
    server.text("from lash.toml")
    result = lash("run", "--db", str(tmp_path / "a.db"), "hi")
    assert result.exit_code == 0, result.stderr  # lash.toml's URL beats OPENAI_BASE_URL
    (tmp_path / "lash.toml").write_text(f'base_url = "{DEAD}"\nmodel = "{MODEL}"\n')
    server.text("from the flag")
    result = lash("run", "--base-url", server.url, "--db", str(tmp_path / "a.db"), "hi")
    assert result.exit_code == 0, result.stderr  # --base-url beats lash.toml
    assert [b["messages"][-1]["content"] for b in server.bodies] == ["hi", "hi"]


@pytest.mark.parametrize("provider", list(PROVIDERS))
def test_resolve_base_url_reads_each_providers_own_variable(provider):
    choice = PROVIDERS[provider]
    env = {choice.base_url_env: "http://proxy.example:8080/v1"}
    assert resolve_base_url(provider, None, None, env) == ("http://proxy.example:8080/v1", choice.base_url_env)
    assert resolve_base_url(provider, None, "http://toml.example/v1", env)[0] == "http://toml.example/v1"
    assert resolve_base_url(provider, "http://flag.example/v1", "http://toml.example/v1", env)[0] == (
        "http://flag.example/v1"
    )
    assert resolve_base_url(provider, None, None, {}) == (None, "default")
    others = {c.base_url_env for n, c in PROVIDERS.items() if c.base_url_env != choice.base_url_env}
    assert resolve_base_url(provider, None, None, dict.fromkeys(others, "http://x.example/v1")) == (None, "default")


def test_a_bad_url_in_the_environment_is_a_config_error(tmp_path, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "ftp://nope")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "k")
    result = lash("run", "--provider", "anthropic", "--model", "m", "--db", str(tmp_path / "a.db"), "hi")
    assert result.exit_code == 2
    assert _cli.one_line(result.stderr) == (
        "error: ANTHROPIC_BASE_URL: 'ftp://nope' is not an http(s) URL; give the API root, e.g. "
        "http://127.0.0.1:8080/v1"
    )


@pytest.mark.parametrize(
    ("provider", "url", "owner"),
    [
        ("anthropic", "https://api.openai.com/v1", "openai"),
        ("openai", "https://api.anthropic.com", "anthropic"),
        ("anthropic", "https://openrouter.ai/api/v1", "openrouter"),
        ("openrouter", "https://API.OPENAI.COM/v1", "openai"),
    ],
)
def test_a_base_url_of_another_provider_in_lash_toml_is_one_error_line(tmp_path, monkeypatch, provider, url, owner):
    monkeypatch.chdir(tmp_path)
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "OPENROUTER_API_KEY"):
        monkeypatch.setenv(name, "k")
    (tmp_path / "lash.toml").write_text(f'base_url = "{url}"\nmodel = "m"\n')
    result = lash("run", "--provider", provider, "--db", str(tmp_path / "a.db"), "hi")
    assert result.exit_code == 2
    line = _cli.one_line(result.stderr)
    assert line.startswith(f"error: base_url {url!r} (from {tmp_path / 'lash.toml'} key 'base_url') is the ")
    assert owner in line and f"the provider is {provider}" in line
    assert not (tmp_path / "a.db").exists()  # refused before anything was opened


def test_a_base_url_of_another_provider_from_the_flag_or_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "k")
    result = lash("run", "--provider", "anthropic", "--base-url", "https://api.openai.com/v1", "--model", "m",
                  "--db", str(tmp_path / "a.db"), "hi")
    assert result.exit_code == 2 and "(from --base-url) is the openai" in result.stderr
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "https://openrouter.ai/api/v1")
    result = lash("run", "--provider", "anthropic", "--model", "m", "--db", str(tmp_path / "a.db"), "hi")
    assert result.exit_code == 2 and "(from ANTHROPIC_BASE_URL) is the openrouter" in _cli.one_line(result.stderr)


def test_a_custom_host_is_accepted_for_every_provider():
    for provider in PROVIDERS:
        assert resolve_base_url(provider, "https://llm.internal.example/v1", None, {})[0] == (
            "https://llm.internal.example/v1"
        )
    # OpenRouter speaks Chat Completions: the openai provider may use it
    assert resolve_base_url("openai", "https://openrouter.ai/api/v1", None, {})[0] == "https://openrouter.ai/api/v1"


# ------------------------------------------------------------------------------- the environment table


def test_env_var_refuses_an_unlisted_variable():
    assert env_var("LASH_DB") == "LASH_DB"
    with pytest.raises(KeyError, match=r"not listed in lash_kernel\.config\.ENVIRONMENT"):
        env_var("LASH_NOT_A_THING")


def test_every_variable_the_kernel_reads_is_in_the_table():
    """Any LASH_* / *_API_KEY / *_BASE_URL / XDG_* name written in the kernel's source is listed."""
    listed = {v.name for v in ENVIRONMENT}
    pattern = re.compile(r"\b(LASH_[A-Z_]+|[A-Z]+_API_KEY|[A-Z]+_BASE_URL|XDG_[A-Z_]+)\b")
    found: set[str] = set()
    for path in (ROOT / "lash_kernel").rglob("*.py"):
        if "testing" in path.parts:
            continue
        found |= {m for m in pattern.findall(path.read_text()) if not m.startswith("_")}
    found -= {"LASH_FIXTURES_DIR"}  # the test suite's, not lash's
    assert found <= listed, f"undocumented environment variables: {sorted(found - listed)}"


def test_provider_key_and_base_url_variables_come_from_the_table():
    listed = {v.name: v for v in ENVIRONMENT}
    for choice in PROVIDERS.values():
        assert {choice.key_env, choice.base_url_env} <= set(listed)
        assert listed[choice.base_url_env].default == choice.default_base_url


# ------------------------------------------------------------------------------- docs/configuration.md


def _render() -> str:
    return runpy.run_path(str(ROOT / "scripts" / "gen_config_doc.py"))["render"]()


def test_configuration_doc_is_fresh():
    assert DOC.read_text() == _render(), "docs/configuration.md is stale: run python scripts/gen_config_doc.py"


def test_configuration_doc_lists_every_key_and_variable():
    import attrs

    from lash_kernel.config import LashConfig, PluginSelection

    text = DOC.read_text()
    keys = [f.name for f in attrs.fields(LashConfig) if f.name not in ("path", "plugins", "plugin_tables")]
    keys += [f.name for f in attrs.fields(PluginSelection)]
    for key in keys:
        assert re.search(rf"^\| `{key}` \|", text, re.M), f"lash.toml key {key!r} is undocumented"
    for var in ENVIRONMENT:
        assert re.search(rf"^\| `{var.name}` \|", text, re.M), f"variable {var.name} is undocumented"
    for table in ("plugins.tracing", "plugins.mcp", "plugins.mcp.servers.<name>"):
        assert f"[{table}]" in text


def test_the_generator_fails_on_an_undocumented_key(monkeypatch):
    """A key with no description in its class's docstring is an error, not a silent blank row."""
    import attrs

    gen = runpy.run_path(str(ROOT / "scripts" / "gen_config_doc.py"))

    @attrs.frozen
    class Table:
        """A table.

        Attributes:
            known: documented.
        """

        known: int = 1
        secret_knob: str = "x"

    with pytest.raises(ValueError, match="secret_knob"):
        gen["key_rows"](Table, "plugins.demo")


def test_config_errors_name_the_environment(monkeypatch, tmp_path):
    with pytest.raises(ConfigError, match="ANTHROPIC_BASE_URL"):
        resolve_base_url("anthropic", None, None, {"ANTHROPIC_BASE_URL": "nope"})


# ------------------------------------------------------------------------------- lash plugins: objects nested


def test_objects_a_plugin_registers_are_nested_under_it():
    from lash_kernel.cli.plugins import _plugins_json
    from lash_kernel.plugin import PluginHost, hookimpl
    from lash_kernel.runtime.core import LashCore
    from lash_kernel.testing import ScriptedModel

    class Sink:
        @hookimpl
        def lash_on_trace_record(self, record):
            return None

    class Owner:
        @hookimpl
        def lash_configure(self, host: PluginHost) -> None:
            host.add_plugin(Sink(), name="owner.sink")

    with LashCore(model_client=ScriptedModel(), model="m", entry_points=False, plugins={"owner": Owner()}) as core:
        core.add_plugin(Sink(), name="loose")  # added outside lash_configure: no owner
        infos = {p.name: p for p in core.plugins()}
        assert infos["owner.sink"].added_by == "owner" and infos["loose"].added_by is None
        data = _plugins_json(core)
    top = {p["name"]: p for p in data["plugins"]}
    assert "owner.sink" not in top and "loose" in top
    (obj,) = top["owner"]["objects"]
    assert obj["name"] == "owner.sink" and obj["hooks"] == ["lash_on_trace_record"]
    assert obj["call_order"] != top["owner"]["call_order"]
    assert top["loose"]["origin"] == "added" and top["loose"]["objects"] == []
