"""Tools: schema derivation, the Tool/ToolRegistry contracts, execute_tool_call's error paths."""

from __future__ import annotations

import enum
import json
import threading
from collections.abc import Sequence
from typing import Annotated, Any, Literal, Optional, Union

import anyio
import attrs
import pytest

from lash_kernel.errors import ConfigError, LashError, ToolError
from lash_kernel.messages import ToolCallPart, ToolResultPart
from lash_kernel.model import ToolSpec
from lash_kernel.tools import Tool, ToolContext, ToolRegistry, execute_tool_call, tool

# ---------------------------------------------------------------------------------------------
# helpers and module-level types (the module uses postponed annotations, so types must resolve)
# ---------------------------------------------------------------------------------------------


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


@attrs.define
class Point:
    """A point on a plane.

    Attributes:
        x: horizontal position, metres.
        y: vertical position, metres.
    """

    x: float
    y: float = 0.0


@attrs.define
class Order:
    item: str
    colour: Color
    where: Point | None = None
    tags: tuple[str, ...] = attrs.field(factory=tuple)


@attrs.define
class Positive:
    n: int = attrs.field(validator=attrs.validators.gt(0))


POINT_SCHEMA = {
    "type": "object",
    "description": "A point on a plane.",
    "properties": {
        "x": {"type": "number", "description": "horizontal position, metres."},
        "y": {"type": "number", "description": "vertical position, metres.", "default": 0.0},
    },
    "required": ["x"],
    "additionalProperties": False,
}


def only_param(t: Tool, name: str = "v") -> dict[str, Any]:
    """The schema of the single parameter of a one-parameter tool."""
    assert list(t.input_schema["properties"]) == [name]
    return t.input_schema["properties"][name]


def make_ctx(name: str = "t", call_id: str = "c1", **kw: Any) -> ToolContext:
    return ToolContext(session_id="s1", turn_id="t1", call_id=call_id, tool_name=name, **kw)


def call(name: str, arguments: Any = "", call_id: str = "c1") -> ToolCallPart:
    if not isinstance(arguments, str):
        arguments = json.dumps(arguments)
    return ToolCallPart(id=call_id, name=name, arguments=arguments)


async def run(t: Tool, arguments: Any = "", **kw: Any) -> ToolResultPart:
    return await execute_tool_call(t, call(t.name, arguments), make_ctx(t.name), **kw)


# ---------------------------------------------------------------------------------------------
# schema derivation: one test per supported type
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("annotation", "expected"),
    [
        (str, {"type": "string"}),
        (int, {"type": "integer"}),
        (float, {"type": "number"}),
        (bool, {"type": "boolean"}),
        (None, {"type": "null"}),
        (Any, {}),
        (list[int], {"type": "array", "items": {"type": "integer"}}),
        (list, {"type": "array"}),
        (Sequence[str], {"type": "array", "items": {"type": "string"}}),
        (tuple[str, ...], {"type": "array", "items": {"type": "string"}}),
        (
            tuple[int, str],
            {
                "type": "array",
                "prefixItems": [{"type": "integer"}, {"type": "string"}],
                "items": False,
                "minItems": 2,
            },
        ),
        (dict[str, float], {"type": "object", "additionalProperties": {"type": "number"}}),
        (dict, {"type": "object"}),
        (list[dict[str, list[bool]]], {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": {"type": "array", "items": {"type": "boolean"}},
            },
        }),
        (Literal["a", "b"], {"enum": ["a", "b"], "type": "string"}),
        (Literal[1, 2, 3], {"enum": [1, 2, 3], "type": "integer"}),
        (Literal[True], {"enum": [True], "type": "boolean"}),
        (Literal["a", 1], {"enum": ["a", 1], "type": ["string", "integer"]}),
        (Literal[Color.RED], {"enum": ["red"], "type": "string"}),
        (Optional[int], {"anyOf": [{"type": "integer"}, {"type": "null"}]}),  # noqa: UP045
        (int | None, {"anyOf": [{"type": "integer"}, {"type": "null"}]}),
        (Union[int, str], {"anyOf": [{"type": "integer"}, {"type": "string"}]}),  # noqa: UP007
        (Color, {"enum": ["red", "green"], "type": "string"}),
        (Level, {"enum": [1, 2], "type": "integer"}),
        (Point, POINT_SCHEMA),
        (Annotated[str, "a city name"], {"type": "string", "description": "a city name"}),
        (
            Annotated[int, "how many", {"minimum": 0, "maximum": 10}],
            {"type": "integer", "description": "how many", "minimum": 0, "maximum": 10},
        ),
    ],
    ids=repr,
)
def test_schema_for_each_supported_type(annotation: Any, expected: dict[str, Any]) -> None:
    def fn(v): ...

    fn.__annotations__ = {"v": annotation}
    t = tool(fn)
    assert only_param(t) == expected
    assert t.input_schema["required"] == ["v"]


def test_full_input_schema_is_exact() -> None:
    @tool
    def weather(city: str, unit: Literal["c", "f"] = "c", days: int | None = None) -> str:
        """Weather forecast for a city.

        Args:
            city: city name, e.g. "Paris".
            unit: temperature unit.
            days: forecast length in days; None for today only.
        """
        return city

    assert weather.input_schema == {
        "type": "object",
        "properties": {
            "city": {"type": "string", "description": 'city name, e.g. "Paris".'},
            "unit": {
                "enum": ["c", "f"],
                "type": "string",
                "description": "temperature unit.",
                "default": "c",
            },
            "days": {
                "anyOf": [{"type": "integer"}, {"type": "null"}],
                "description": "forecast length in days; None for today only.",
                "default": None,
            },
        },
        "required": ["city"],
        "additionalProperties": False,
    }
    assert weather.name == "weather"
    assert weather.description == "Weather forecast for a city."
    assert weather.output_schema == {"type": "string"}
    assert weather.takes_context is None
    assert weather.spec() == ToolSpec(
        name="weather",
        description="Weather forecast for a city.",
        input_schema=weather.input_schema,
    )


def test_nested_attrs_class_schema() -> None:
    @tool
    def place(order: Order) -> None:
        """Place an order."""

    assert only_param(place, "order") == {
        "type": "object",
        "properties": {
            "item": {"type": "string"},
            "colour": {"enum": ["red", "green"], "type": "string"},
            "where": {"anyOf": [POINT_SCHEMA, {"type": "null"}], "default": None},
            "tags": {"type": "array", "items": {"type": "string"}},  # factory: no default
        },
        "required": ["item", "colour"],
        "additionalProperties": False,
    }
    assert place.output_schema is None


def test_docstring_description_and_args() -> None:
    @tool
    def search(
        query: str, limit: int = 10, mode: Annotated[str, "from Annotated"] = "fast"
    ) -> list[str]:
        """Search the index.

        Matches are ranked by relevance,
        best first.

        Args:
            query (str): the search text;
                may contain quotes.
            limit (int, optional): at most this many results.
            mode: from the docstring (Annotated wins).
            unknown: an entry for no parameter is ignored.

        Returns:
            Matching titles.

        Raises:
            ToolError: never.
        """
        return []

    assert search.description == (
        "Search the index.\n\nMatches are ranked by relevance,\nbest first."
    )
    props = search.input_schema["properties"]
    assert props["query"]["description"] == "the search text; may contain quotes."
    assert props["limit"]["description"] == "at most this many results."
    assert props["mode"]["description"] == "from Annotated"
    assert search.output_schema == {"type": "array", "items": {"type": "string"}}


def test_no_docstring_and_description_override() -> None:
    def bare(x: int) -> int:
        return x

    assert tool(bare).description == ""
    assert only_param(tool(bare), "x") == {"type": "integer"}
    t = tool(name="renamed", description="Custom text.", timeout_s=5)(bare)
    assert (t.name, t.description, t.timeout_s) == ("renamed", "Custom text.", 5)


def test_required_and_defaults() -> None:
    @tool
    def f(
        a: int,
        b: str = "x",
        c: Color = Color.GREEN,
        d: tuple[int, ...] = (1, 2),
        e: Point = Point(1.0, 2.0),  # noqa: B008
        f: bool = False,
        g: float | None = None,
    ) -> None:
        """F."""

    props = f.input_schema["properties"]
    assert f.input_schema["required"] == ["a"]
    assert "default" not in props["a"]
    assert [props[k]["default"] for k in "bcdefg"] == [
        "x",
        "green",
        [1, 2],
        {"x": 1.0, "y": 2.0},
        False,
        None,
    ]


def test_non_json_default_is_config_error() -> None:
    sentinel = object()

    def f(a: Any = sentinel) -> None: ...

    with pytest.raises(ConfigError, match="tool 'f', parameter 'a'.*not JSON-serialisable"):
        tool(f)


# ---------------------------------------------------------------------------------------------
# ToolContext injection
# ---------------------------------------------------------------------------------------------


def test_context_parameter_is_injected_not_in_schema() -> None:
    @tool
    def who(ctx: ToolContext, greeting: str = "hi") -> str:
        """Who is calling."""
        return f"{greeting} {ctx.session_id}/{ctx.turn_id}/{ctx.call_id}/{ctx.tool_name}"

    assert who.takes_context == "ctx"
    assert list(who.input_schema["properties"]) == ["greeting"]
    assert who.input_schema["required"] == []

    @tool
    def other(x: int, context: Annotated[ToolContext, "injected"]) -> None: ...

    assert other.takes_context == "context"
    assert list(other.input_schema["properties"]) == ["x"]


@pytest.mark.anyio
async def test_context_is_passed_at_call_time() -> None:
    @tool
    async def who(ctx: ToolContext, greeting: str = "hi") -> str:
        return f"{greeting} {ctx.session_id}/{ctx.turn_id}/{ctx.call_id}/{ctx.tool_name}"

    result = await execute_tool_call(who, call("who", {}, call_id="c9"), make_ctx("who", "c9"))
    assert result == ToolResultPart(call_id="c9", name="who", output="hi s1/t1/c9/who")


def test_two_context_parameters_rejected() -> None:
    def f(a: ToolContext, b: ToolContext) -> None: ...

    with pytest.raises(ConfigError, match="only one ToolContext"):
        tool(f)


def test_context_inside_container_rejected() -> None:
    def f(a: list[ToolContext]) -> None: ...

    with pytest.raises(ConfigError, match="parameter 'a'.*top-level"):
        tool(f)


def test_context_surface_is_narrow() -> None:
    ctx = make_ctx()
    assert ctx.cancelled is False
    public = {n for n in dir(ctx) if not n.startswith("_")}
    assert public == {
        "session_id", "turn_id", "call_id", "tool_name", "cancelled", "wait_cancelled", "report_progress",
        "complete", "open_child_session",  # 0.2: model calls and child sessions, through the runtime
        "tools",  # 0.2: the turn's catalog (what a subagent may inherit), read-only
    }


@pytest.mark.anyio
async def test_a_hand_built_context_has_no_runtime_for_model_calls_or_children() -> None:
    ctx = make_ctx()
    with pytest.raises(LashError, match="no runtime behind it"):
        await ctx.complete("hi", source="turn")
    with pytest.raises(LashError, match="no runtime behind it"):
        ctx.open_child_session()


# ---------------------------------------------------------------------------------------------
# definition errors
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("annotation", "needle"),
    [
        (set[int], "set"),
        (bytes, "bytes"),
        (object, "object"),
        (dict[int, str], "keys must be str"),
        (list[object], "object"),
        (Literal[b"x"], "Literal value"),
    ],
    ids=repr,
)
def test_unsupported_annotation_names_tool_and_parameter(annotation: Any, needle: str) -> None:
    def my_tool(ok: int, bad): ...

    my_tool.__annotations__ = {"ok": int, "bad": annotation}
    with pytest.raises(ConfigError, match="tool 'my_tool', parameter 'bad'") as info:
        tool(my_tool)
    assert needle in str(info.value)


def test_missing_annotation_and_var_args_rejected() -> None:
    def untyped(a): ...

    def star(*args: int) -> None: ...

    def kw(**kwargs: int) -> None: ...

    with pytest.raises(ConfigError, match="tool 'untyped', parameter 'a': missing type annotation"):
        tool(untyped)
    with pytest.raises(ConfigError, match=r"parameter 'args': \*args and \*\*kwargs"):
        tool(star)
    with pytest.raises(ConfigError, match=r"parameter 'kwargs': \*args and \*\*kwargs"):
        tool(kw)


def test_unresolvable_forward_reference_is_config_error() -> None:
    @attrs.define
    class Local:  # not importable from module globals: the string annotation cannot resolve
        a: int

    def f(x: Local) -> None: ...

    with pytest.raises(ConfigError, match="tool 'f': cannot resolve type hints: NameError"):
        tool(f)


@pytest.mark.parametrize("bad", ["", "has space", "dots.not.allowed", "x" * 65, "<lambda>", "é"])
def test_invalid_names_rejected(bad: str) -> None:
    def f() -> None: ...

    with pytest.raises(ConfigError, match="invalid tool name"):
        tool(name=bad)(f)
    with pytest.raises(ConfigError, match="invalid tool name"):
        Tool(name=bad, fn=f)


def test_lambda_needs_a_name() -> None:
    with pytest.raises(ConfigError, match="invalid tool name '<lambda>'"):
        tool(lambda: None)
    assert tool(name="ok")(lambda: None).name == "ok"


@pytest.mark.parametrize("good", ["a", "A-b_9", "x" * 64])
def test_valid_names_accepted(good: str) -> None:
    assert Tool(name=good, fn=lambda: None).name == good


def test_direct_construction_validates() -> None:
    def f() -> None: ...

    with pytest.raises(ConfigError, match='"type": "object"'):
        Tool(name="f", fn=f, input_schema={"type": "array"})
    with pytest.raises(ConfigError, match="input_schema is not valid JSON Schema"):
        Tool(name="f", fn=f, input_schema={"type": "object", "properties": 3})
    with pytest.raises(ConfigError, match="timeout_s must be > 0"):
        Tool(name="f", fn=f, timeout_s=0)
    with pytest.raises(ConfigError, match="fn must be callable"):
        Tool(name="f", fn="nope")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="takes_context='x'"):
        Tool(
            name="f",
            fn=f,
            input_schema={"type": "object", "properties": {"x": {}}},
            takes_context="x",
        )


def test_decorator_forms_and_tool_stays_callable() -> None:
    @tool
    def add(a: int, b: int) -> int:
        """Add."""
        return a + b

    @tool(timeout_s=5)
    async def aadd(a: int, b: int) -> int:
        return a + b

    assert isinstance(add, Tool)
    assert isinstance(aadd, Tool)
    assert add(2, 3) == 5
    assert add(a=2, b=3) == 5
    assert aadd.timeout_s == 5
    assert anyio.run(aadd, 2, 3) == 5
    with pytest.raises(ConfigError, match="already a Tool"):
        tool(add)
    assert add == add and add != tool(add.fn)  # identity equality, hashable
    assert len({add, aadd}) == 2


# ---------------------------------------------------------------------------------------------
# execution: success paths
# ---------------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_sync_tool_runs_in_worker_thread() -> None:
    main = threading.get_ident()

    @tool
    def where(x: int) -> dict[str, Any]:
        return {"x": x, "other_thread": threading.get_ident() != main}

    result = await run(where, {"x": 3})
    assert result == ToolResultPart(
        call_id="c1", name="where", output='{"x": 3, "other_thread": true}'
    )


@pytest.mark.anyio
async def test_async_tool_is_awaited() -> None:
    @tool
    async def greet(name: str) -> str:
        await anyio.sleep(0)
        return f"hello {name}"

    result = await run(greet, '{"name": "Ada"}')
    assert result.output == "hello Ada"
    assert not result.is_error


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("value", "output"),
    [
        ("plain", "plain"),
        (None, ""),
        ({"é": [1, 2.5]}, '{"é": [1, 2.5]}'),
        (Point(1.0), '{"x": 1.0, "y": 0.0}'),
        (Color.RED, '"red"'),
        (42, "42"),
    ],
    ids=repr,
)
async def test_output_encoding(value: Any, output: str) -> None:
    @tool
    def give() -> Any:
        return value

    result = await run(give)
    assert (result.output, result.is_error) == (output, False)


@pytest.mark.anyio
async def test_empty_arguments_mean_empty_object() -> None:
    @tool
    def noargs() -> str:
        return "ok"

    assert (await run(noargs, "")).output == "ok"
    assert (await run(noargs, "  {} ")).output == "ok"


@pytest.mark.anyio
async def test_positional_only_parameters() -> None:
    @tool
    def f(a: int, b: int = 10, /, *, c: int = 100) -> int:
        return a + b + c

    assert (await run(f, {"a": 1})).output == "111"
    assert (await run(f, {"a": 1, "b": 2, "c": 3})).output == "6"


@pytest.mark.anyio
async def test_two_sync_tools_run_in_parallel_threads() -> None:
    started = {"a": threading.Event(), "b": threading.Event()}
    saw_other: dict[str, bool] = {}

    def make(me: str, other: str) -> Tool:
        def work() -> str:
            started[me].set()
            # Only true if the other tool started while this one is still running.
            saw_other[me] = started[other].wait(timeout=5)
            return me

        return tool(name=me)(work)

    results: dict[str, ToolResultPart] = {}

    async def one(t: Tool) -> None:
        results[t.name] = await run(t)

    async with anyio.create_task_group() as tg:
        tg.start_soon(one, make("a", "b"))
        tg.start_soon(one, make("b", "a"))
    assert saw_other == {"a": True, "b": True}
    assert results["a"].output == "a" and results["b"].output == "b"


# ---------------------------------------------------------------------------------------------
# execution: argument conversion
# ---------------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_attrs_and_enum_arguments_are_converted() -> None:
    seen: dict[str, Any] = {}

    @tool
    def place(
        order: Order, points: list[Point], level: Level, pair: tuple[int, str], scale: float
    ) -> str:
        seen.update(order=order, points=points, level=level, pair=pair, scale=scale)
        return "ok"

    args = {
        "order": {"item": "tea", "colour": "green", "where": {"x": 1}, "tags": ["hot"]},
        "points": [{"x": 0.5, "y": 2}],
        "level": 2,
        "pair": [7, "seven"],
        "scale": 3,
    }
    result = await run(place, args)
    assert (result.output, result.is_error) == ("ok", False)
    assert seen["order"] == Order(item="tea", colour=Color.GREEN, where=Point(1.0), tags=("hot",))
    assert isinstance(seen["order"].where.x, float)
    assert seen["points"] == [Point(0.5, 2.0)]
    assert seen["level"] is Level.HIGH
    assert seen["pair"] == (7, "seven")
    assert seen["scale"] == 3.0 and isinstance(seen["scale"], float)


@pytest.mark.anyio
async def test_optional_attrs_argument_accepts_null() -> None:
    @tool
    def maybe(p: Point | None) -> str:
        return repr(p)

    assert (await run(maybe, {"p": None})).output == "None"
    assert (await run(maybe, {"p": {"x": 2}})).output == "Point(x=2.0, y=0.0)"


@pytest.mark.anyio
async def test_attrs_validator_failure_is_error_result() -> None:
    @tool
    def f(p: Positive) -> None: ...

    result = await run(f, {"p": {"n": 0}})
    assert result.is_error
    assert result.output.startswith("invalid arguments for tool 'f': ValueError:")


# ---------------------------------------------------------------------------------------------
# execution: error results
# ---------------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_unknown_tool() -> None:
    ctx = make_ctx("nope")
    result = await execute_tool_call(None, call("nope"), ctx, available=("search", "weather"))
    assert result == ToolResultPart(
        call_id="c1", name="nope", output="unknown tool 'nope'; available tools: search, weather",
        is_error=True,
    )
    bare = await execute_tool_call(None, call("nope"), ctx)
    assert (bare.output, bare.is_error) == ("unknown tool 'nope'", True)


@pytest.fixture
def typed_tool() -> Tool:
    @tool
    def typed(n: int, label: str = "") -> str:
        return f"{label}{n}"

    return typed


@pytest.mark.anyio
async def test_malformed_json_quotes_the_error(typed_tool: Tool) -> None:
    result = await run(typed_tool, '{"n": 1,')
    assert result.is_error
    assert result.output.startswith("invalid JSON in arguments for tool 'typed': Expecting")
    assert "line 1 column" in result.output


@pytest.mark.anyio
async def test_arguments_must_be_an_object(typed_tool: Tool) -> None:
    result = await run(typed_tool, "[1, 2]")
    assert result.is_error
    assert result.output == "arguments for tool 'typed' must be a JSON object, got list: [1, 2]"


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ({"n": "three"}, "- $.n: 'three' is not of type 'integer'"),
        ({"label": "x"}, "- $: 'n' is a required property"),
        (
            {"n": 1, "extra": True},
            "- $: Additional properties are not allowed ('extra' was unexpected)",
        ),
        ({"n": True}, "- $.n: True is not of type 'integer'"),
    ],
    ids=["wrong-type", "missing-required", "extra-property", "bool-is-not-int"],
)
async def test_schema_violation(typed_tool: Tool, arguments: dict[str, Any], expected: str) -> None:
    result = await run(typed_tool, arguments)
    assert result.is_error
    assert result.output == f"invalid arguments for tool 'typed':\n{expected}"


@pytest.mark.anyio
async def test_every_violation_listed_with_its_path() -> None:
    @tool
    def f(points: list[Point], n: int) -> None: ...

    result = await run(f, {"points": [{"x": 1}, {"x": "no", "z": 1}], "n": "x"})
    assert result.is_error
    assert result.output.splitlines() == [
        "invalid arguments for tool 'f':",
        "- $.n: 'x' is not of type 'integer'",
        "- $.points[1]: Additional properties are not allowed ('z' was unexpected)",
        "- $.points[1].x: 'no' is not of type 'number'",
    ]


@pytest.mark.anyio
async def test_tool_error_vs_other_exception() -> None:
    @tool
    def clean() -> None:
        raise ToolError("the file does not exist")

    @tool
    async def buggy() -> None:
        raise KeyError("missing")

    a = await run(clean)
    b = await run(buggy)
    assert (a.output, a.is_error) == ("the file does not exist", True)
    assert (b.output, b.is_error) == ("KeyError: 'missing'", True)


@pytest.mark.anyio
async def test_unencodable_output_is_error() -> None:
    loop: list[Any] = []
    loop.append(loop)

    @tool
    def circular() -> Any:
        return loop

    result = await run(circular)
    assert result.is_error
    assert "not JSON-encodable" in result.output


@pytest.mark.anyio
async def test_retryable_tool_error_is_retried_up_to_the_tools_retries() -> None:
    attempts: list[int] = []

    @tool(retries=2, retry_delay_s=0)
    def busy_twice() -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise ToolError(f"busy ({len(attempts)})", retryable=True)
        return "done"

    result = await run(busy_twice)
    assert (result.output, result.is_error) == ("done", False)
    assert len(attempts) == 3


@pytest.mark.anyio
async def test_retries_stop_at_the_limit_and_at_a_non_retryable_failure() -> None:
    attempts: list[str] = []

    @tool(retries=1, retry_delay_s=0)
    async def always_busy() -> str:
        attempts.append("busy")
        raise ToolError("still busy", retryable=True)

    @tool(retries=5, retry_delay_s=0)
    async def then_broken() -> str:
        attempts.append("broken")
        if attempts.count("broken") == 1:
            raise ToolError("busy", retryable=True)
        raise ToolError("gone for good")

    @tool(retries=5, retry_delay_s=0)
    async def plain_bug() -> str:
        attempts.append("bug")
        raise KeyError("x")

    assert (await run(always_busy)).output == "still busy"
    assert (await run(then_broken)).output == "gone for good"
    assert (await run(plain_bug)).output == "KeyError: 'x'"
    assert attempts == ["busy", "busy", "broken", "broken", "bug"]


@pytest.mark.anyio
async def test_retryable_error_without_retries_is_returned_at_once() -> None:
    attempts: list[int] = []

    @tool
    def busy() -> str:
        attempts.append(1)
        raise ToolError("busy", retryable=True)

    assert busy.retries == 0
    result = await run(busy)
    assert (result.output, result.is_error, attempts) == ("busy", True, [1])


def test_retry_options_are_validated() -> None:
    def noop() -> None:
        """Nothing."""

    with pytest.raises(ConfigError, match="retries must be an int >= 0"):
        tool(retries=-1)(noop)
    with pytest.raises(ConfigError, match="retries must be an int >= 0"):
        Tool(name="x", fn=lambda: None, retries=True)
    with pytest.raises(ConfigError, match="retry_delay_s must be >= 0"):
        Tool(name="x", fn=lambda: None, retry_delay_s=-0.5)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("value", "expected"),
    [("bad\udcff.txt", "bad\ufffd.txt"), ("\ud83d", "\ufffd"), ("\ud83d\ude00", "\U0001f600"), ("ok", "ok")],
)
async def test_tool_output_is_made_valid_unicode(value: str, expected: str) -> None:
    @tool
    def listing() -> str:
        return value

    @tool
    def failing() -> str:
        raise FileNotFoundError(value)

    result = await run(listing)
    assert result.output == expected
    result.output.encode("utf-8")
    error = await run(failing)
    assert error.is_error and error.output == f"FileNotFoundError: {expected}"


# ---------------------------------------------------------------------------------------------
# timeouts and cancellation
# ---------------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_async_timeout_uses_tool_timeout_and_sets_cancelled() -> None:
    @tool(timeout_s=0.05)
    async def slow() -> str:
        await anyio.sleep(30)
        return "never"

    ctx = make_ctx("slow")
    result = await execute_tool_call(slow, call("slow"), ctx, default_timeout_s=60)
    assert result == ToolResultPart(
        call_id="c1", name="slow", output="tool 'slow' timed out after 0.05 s", is_error=True
    )
    assert ctx.cancelled


@pytest.mark.anyio
async def test_sync_timeout_uses_default_and_abandoned_thread_sees_cancel() -> None:
    stopped = threading.Event()
    ctx = make_ctx("blocking")

    @tool
    def blocking(ctx: ToolContext) -> str:
        for _ in range(500):  # up to 5 s, polling the cancellation flag
            if ctx.cancelled:
                stopped.set()
                return "stopped"
            threading.Event().wait(0.01)
        return "ran to the end"

    result = await execute_tool_call(blocking, call("blocking"), ctx, default_timeout_s=0.1)
    assert (result.output, result.is_error) == ("tool 'blocking' timed out after 0.1 s", True)
    assert ctx.cancelled
    assert await anyio.to_thread.run_sync(stopped.wait, 5)


@pytest.mark.anyio
async def test_no_timeout_when_none_given() -> None:
    @tool
    async def quick() -> str:
        await anyio.sleep(0.01)
        return "done"

    assert (await run(quick)).output == "done"


@pytest.mark.anyio
async def test_cancellation_propagates_and_marks_context() -> None:
    entered = anyio.Event()
    outcome: list[str] = []

    @tool
    async def waiter(ctx: ToolContext) -> str:
        entered.set()
        await anyio.sleep(30)
        return "never"

    ctx = make_ctx("waiter")

    async def runner() -> None:
        try:
            await execute_tool_call(waiter, call("waiter"), ctx)
        except anyio.get_cancelled_exc_class():
            outcome.append("cancelled")
            raise
        outcome.append("returned")  # pragma: no cover - would be a bug

    async with anyio.create_task_group() as tg:
        tg.start_soon(runner)
        await entered.wait()
        assert not ctx.cancelled
        tg.cancel_scope.cancel()
    assert outcome == ["cancelled"]
    assert ctx.cancelled


@pytest.mark.anyio
async def test_runtime_cancel_event_is_observable_by_the_tool() -> None:
    event = anyio.Event()
    entered = anyio.Event()

    @tool
    async def polite(ctx: ToolContext) -> str:
        entered.set()
        await ctx.wait_cancelled()
        return f"stopped cleanly (cancelled={ctx.cancelled})"

    ctx = make_ctx("polite", cancel_event=event)
    results: list[ToolResultPart] = []

    async def runner() -> None:
        results.append(await execute_tool_call(polite, call("polite"), ctx))

    async with anyio.create_task_group() as tg:
        tg.start_soon(runner)
        await entered.wait()
        assert not ctx.cancelled
        event.set()
    assert results[0].output == "stopped cleanly (cancelled=True)"


@pytest.mark.anyio
async def test_default_cancel_signal_wait() -> None:
    ctx = make_ctx()
    with anyio.move_on_after(0.01) as scope:
        await ctx.wait_cancelled()
    assert scope.cancelled_caught
    ctx._cancel_event.set()  # what execute_tool_call does on cancel/timeout
    with anyio.fail_after(1):
        await ctx.wait_cancelled()
    assert ctx.cancelled


# ---------------------------------------------------------------------------------------------
# registry
# ---------------------------------------------------------------------------------------------


def _named(name: str) -> Tool:
    def fn() -> str:
        return name

    return tool(name=name, description=f"{name} tool")(fn)


def test_registry_catalog() -> None:
    a, b, c = _named("a"), _named("b"), _named("c")
    reg = ToolRegistry([a, b])
    reg.add(c, provider="lash-mcp")
    assert len(reg) == 3
    assert list(reg) == [a, b, c]
    assert reg.names() == ("a", "b", "c")
    assert reg.get("b") is b and reg.get("zzz") is None
    assert "a" in reg and a in reg and "zzz" not in reg and _named("a") not in reg and 3 not in reg
    assert reg.provider_of("a") == "host" and reg.provider_of("c") == "lash-mcp"
    assert reg.provider_of("zzz") is None
    assert reg.specs() == (a.spec(), b.spec(), c.spec())
    assert [s.name for s in reg.specs()] == ["a", "b", "c"]


def test_registry_duplicate_names_both_providers() -> None:
    reg = ToolRegistry()
    reg.add(_named("search"), provider="lash-web")
    with pytest.raises(ConfigError) as info:
        reg.add(_named("search"), provider="lash-mcp")
    assert "'search'" in str(info.value)
    assert "'lash-web'" in str(info.value) and "'lash-mcp'" in str(info.value)
    assert reg.provider_of("search") == "lash-web"


def test_registry_replace_keeps_position() -> None:
    reg = ToolRegistry([_named("a"), _named("b")])
    newer = _named("a")
    reg.add(newer, provider="override", replace=True)
    assert reg.names() == ("a", "b")
    assert reg.get("a") is newer and reg.provider_of("a") == "override"


def test_registry_rejects_non_tools() -> None:
    def plain() -> None: ...

    with pytest.raises(ConfigError, match="needs a Tool"):
        ToolRegistry().add(plain)  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_registry_with_execute_unknown_lists_catalog() -> None:
    reg = ToolRegistry([_named("a"), _named("b")])
    result = await execute_tool_call(reg.get("x"), call("x"), make_ctx("x"), available=reg.names())
    assert result.output == "unknown tool 'x'; available tools: a, b"


@pytest.mark.anyio
async def test_json_escaped_lone_surrogates_in_arguments_reach_the_tool_as_valid_text() -> None:
    seen: list[object] = []

    @tool
    def note(text: str, tags: list[str]) -> str:
        """Keep a note.

        Args:
            text: the note.
            tags: labels.
        """
        seen.append((text, tags))
        return "ok"

    # what a model writes when it escapes half an emoji, and a whole one split into its pair
    arguments = '{"text": "a\\ud83d b \\ud83d\\ude00", "tags": ["\\udcff"]}'
    result = await run(note, arguments)
    assert not result.is_error, result.output
    assert seen == [("a\ufffd b \U0001f600", ["\ufffd"])]
