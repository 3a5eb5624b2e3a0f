"""Schema derivation for ``@tool``: type hints and Google-style docstrings -> JSON Schema.

Rule: pure functions of a signature (no I/O, no registry); ``lash_kernel.tools`` builds ``Tool``
objects from what this module derives. Unsupported annotations raise ``ConfigError`` naming
the tool and parameter. The module is private to the kernel; its names without a leading
underscore are what ``tools`` uses.
"""

from __future__ import annotations

import collections.abc
import enum
import inspect
import json
import re
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import attrs

from lash_kernel.errors import ConfigError

_JSONSchema = dict[str, Any]


_SECTION_RE = re.compile(
    r"^\s*(Args|Arguments|Parameters|Params|Keyword Args|Keyword Arguments|Other Parameters|"
    r"Returns?|Yields?|Raises|Exceptions?|Examples?|Notes?|Warnings?|See Also|Todo|"
    r"Attributes|Methods|References)\s*:\s*$"
)
_ENTRY_RE = re.compile(r"^\**(\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")
ARG_SECTIONS = frozenset(
    {"Args", "Arguments", "Parameters", "Params", "Keyword Args", "Keyword Arguments"}
)


def parse_docstring(doc: str | None, sections: frozenset[str]) -> tuple[str, dict[str, str]]:
    """Split a Google-style docstring into its description and per-name entry descriptions.

    Args:
        doc: the raw docstring, or None.
        sections: section headers whose ``name: text`` entries are collected.
    Returns:
        ``(description, entries)``: the text before the first section header (stripped), and a
        mapping of entry name to its one-line description (continuation lines joined by spaces).
    """
    if not doc:
        return "", {}
    lines = inspect.cleandoc(doc).splitlines()
    description: list[str] = []
    entries: dict[str, str] = {}
    i = 0
    while i < len(lines) and not _SECTION_RE.match(lines[i]):
        description.append(lines[i])
        i += 1
    while i < len(lines):
        header = _SECTION_RE.match(lines[i])
        if header is None:
            i += 1
            continue
        header_indent = len(lines[i]) - len(lines[i].lstrip())
        collect = header.group(1) in sections
        i += 1
        entry_indent: int | None = None
        current: str | None = None
        while i < len(lines):
            line = lines[i]
            if not line.strip():
                i += 1
                continue
            indent = len(line) - len(line.lstrip())
            if indent <= header_indent:
                break  # next section (or unindented text) starts
            if entry_indent is None:
                entry_indent = indent
            if indent <= entry_indent:
                match = _ENTRY_RE.match(line.strip())
                current = match.group(1) if match else None
                if collect and match:
                    entries[current] = match.group(2).strip()  # type: ignore[index]
            elif collect and current is not None:
                entries[current] = f"{entries[current]} {line.strip()}".strip()
            i += 1
    return "\n".join(description).strip(), entries


def _json_type_of(value: Any) -> str | None:
    """JSON Schema type name of a Literal/Enum value, or None if not a JSON scalar."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return None


def _enum_schema(values: Sequence[Any], where: str, what: str) -> _JSONSchema:
    """``{"enum": values, "type": t}``, where ``t`` is one type name or a list of them."""
    kinds: list[str] = []
    for value in values:
        kind = _json_type_of(value)
        if kind is None:
            raise ConfigError(
                f"{where}: {what} value {value!r} is not a JSON string/number/bool/null"
            )
        if kind not in kinds:
            kinds.append(kind)
    schema: _JSONSchema = {"enum": list(values)}
    schema["type"] = kinds[0] if len(kinds) == 1 else kinds
    return schema


def _jsonable(value: Any) -> Any:
    """Turn a Python default into its JSON form (enums, tuples, attrs instances)."""
    if isinstance(value, enum.Enum):
        return _jsonable(value.value)
    if attrs.has(type(value)):
        return _jsonable(attrs.asdict(value, recurse=False))
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


def default_json(value: Any, where: str) -> Any:
    out = _jsonable(value)
    try:
        json.dumps(out)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: default {value!r} is not JSON-serialisable") from exc
    return out


class Deriver:
    """Derive a JSON Schema and a value converter from one type annotation.

    Args:
        where: error-message prefix naming the tool and parameter.
    """

    def __init__(self, where: str, *, context_type: type) -> None:
        self.where = where
        self.context_type = context_type  # ToolContext: injected, so never part of a schema
        self._stack: list[type] = []  # attrs classes being derived (recursion guard)

    def unsupported(self, tp: Any, why: str = "") -> ConfigError:
        extra = f" ({why})" if why else ""
        return ConfigError(
            f"{self.where}: unsupported type annotation {tp!r}{extra}; supported: str, int, "
            "float, bool, None, Any, list[X], tuple[X, ...], dict[str, X], Literal[...], "
            "X | None, unions, enum.Enum subclasses, attrs classes, Annotated[X, 'description']"
        )

    def derive(self, tp: Any) -> tuple[_JSONSchema, Callable[[Any], Any] | None]:
        """Return ``(schema, converter)``; converter is None when JSON values need no conversion."""
        if tp is Any:
            return {}, None
        if tp is None or tp is type(None):
            return {"type": "null"}, None
        if tp is self.context_type:
            raise self.unsupported(tp, "ToolContext is only allowed as a top-level parameter")
        origin = typing.get_origin(tp)
        args = typing.get_args(tp)
        if origin is typing.Annotated:
            schema, conv = self.derive(args[0])
            schema = dict(schema)
            for meta in tp.__metadata__:
                if isinstance(meta, str):
                    schema["description"] = meta
                elif isinstance(meta, Mapping):
                    schema.update(meta)
            return schema, conv
        if origin is Literal:
            return self._literal(args)
        if origin is typing.Union or origin is types.UnionType:
            return self._union(args)
        if origin in (list, collections.abc.Sequence, collections.abc.MutableSequence):
            if len(args) != 1:
                raise self.unsupported(tp)
            items, conv = self.derive(args[0])
            if conv is None:
                return {"type": "array", "items": items}, None
            return {"type": "array", "items": items}, lambda v: [conv(x) for x in v]
        if origin is tuple:
            return self._tuple(tp, args)
        if origin in (dict, collections.abc.Mapping, collections.abc.MutableMapping):
            if len(args) != 2 or args[0] is not str:
                raise self.unsupported(tp, "object keys must be str")
            values, conv = self.derive(args[1])
            schema = {"type": "object", "additionalProperties": values}
            if conv is None:
                return schema, None
            return schema, lambda v: {k: conv(x) for k, x in v.items()}
        if origin is not None or not isinstance(tp, type):
            raise self.unsupported(tp)
        if tp is bool:
            return {"type": "boolean"}, None
        if tp is int:
            return {"type": "integer"}, None
        if tp is float:
            return {"type": "number"}, float
        if tp is str:
            return {"type": "string"}, None
        if tp is list:
            return {"type": "array"}, None
        if tp is tuple:
            return {"type": "array"}, tuple
        if tp is dict:
            return {"type": "object"}, None
        if issubclass(tp, enum.Enum):
            members = list(tp)
            if not members:
                raise self.unsupported(tp, "enum has no members")
            return _enum_schema([m.value for m in members], self.where, f"enum {tp.__name__}"), tp
        if attrs.has(tp):
            return self._attrs_class(tp)
        raise self.unsupported(tp)

    def _literal(self, values: tuple[Any, ...]) -> tuple[_JSONSchema, Callable[[Any], Any] | None]:
        json_values = [v.value if isinstance(v, enum.Enum) else v for v in values]
        schema = _enum_schema(json_values, self.where, "Literal")
        members = {v.value: v for v in values if isinstance(v, enum.Enum)}
        if not members:
            return schema, None
        return schema, lambda v: members.get(v, v)

    def _union(self, members: tuple[Any, ...]) -> tuple[_JSONSchema, Callable[[Any], Any] | None]:
        derived = [self.derive(m) for m in members]
        schema: _JSONSchema = {"anyOf": [s for s, _ in derived]}
        if all(c is None for _, c in derived):
            return schema, None
        # Convert with the first member whose schema the value matches.
        import jsonschema

        choices = [(jsonschema.Draft202012Validator(s), c) for s, c in derived]

        def convert(value: Any) -> Any:
            for validator, conv in choices:
                if validator.is_valid(value):
                    return value if conv is None else conv(value)
            return value

        return schema, convert

    def _tuple(
        self, tp: Any, args: tuple[Any, ...]
    ) -> tuple[_JSONSchema, Callable[[Any], Any] | None]:
        if len(args) == 2 and args[1] is Ellipsis:
            items, conv = self.derive(args[0])
            if conv is None:
                return {"type": "array", "items": items}, tuple
            return {"type": "array", "items": items}, lambda v: tuple(conv(x) for x in v)
        if not args or args == ((),):
            return {"type": "array", "maxItems": 0}, tuple
        derived = [self.derive(a) for a in args]
        schema = {
            "type": "array",
            "prefixItems": [s for s, _ in derived],
            "items": False,
            "minItems": len(args),
        }
        convs = [c for _, c in derived]
        return schema, lambda v: tuple(
            x if c is None else c(x) for c, x in zip(convs, v, strict=True)
        )

    def _attrs_class(self, cls: type) -> tuple[_JSONSchema, Callable[[Any], Any] | None]:
        if cls in self._stack:
            raise self.unsupported(cls, "recursive attrs classes are not supported")
        self._stack.append(cls)
        try:
            try:
                hints = typing.get_type_hints(cls, include_extras=True)
            except Exception as exc:
                raise self.unsupported(cls, f"cannot resolve its annotations: {exc}") from exc
            description, field_docs = parse_docstring(cls.__doc__, frozenset({"Attributes"}))
            properties: dict[str, _JSONSchema] = {}
            required: list[str] = []
            converters: dict[str, Callable[[Any], Any]] = {}
            for field in attrs.fields(cls):
                if not field.init:
                    continue
                key = field.alias or field.name
                if field.name not in hints:
                    raise self.unsupported(cls, f"field {field.name!r} has no type annotation")
                schema, conv = self.derive(hints[field.name])
                schema = dict(schema)
                doc = field_docs.get(field.name) or field_docs.get(key)
                if doc and not has_own_description(hints[field.name]):
                    schema["description"] = doc
                if field.default is attrs.NOTHING:
                    required.append(key)
                elif not isinstance(field.default, attrs.Factory):  # type: ignore[arg-type]
                    schema["default"] = default_json(
                        field.default, f"{self.where} (field {cls.__name__}.{field.name})"
                    )
                properties[key] = schema
                if conv is not None:
                    converters[key] = conv
        finally:
            self._stack.pop()
        out: _JSONSchema = {"type": "object"}
        if description:
            out["description"] = description
        out.update(properties=properties, required=required, additionalProperties=False)

        def convert(value: Any) -> Any:
            if not isinstance(value, Mapping):
                return value
            kwargs = {k: (converters[k](v) if k in converters else v) for k, v in value.items()}
            return cls(**kwargs)

        return out, convert


def has_own_description(tp: Any) -> bool:
    """True when ``tp`` is ``Annotated[..., "description"]`` (which beats a docstring entry)."""
    return typing.get_origin(tp) is typing.Annotated and any(
        isinstance(m, str) for m in tp.__metadata__
    )


def strip_annotated(tp: Any) -> Any:
    while typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    return tp


# ------------------------------------------------------------------------------------ output schemas
#: The property a non-object value is wrapped in (providers require object tool parameters).
WRAPPED_KEY = "value"


class _NoContext:
    """Stands in for ``ToolContext`` when deriving an output schema (nothing is injected)."""


def output_schema(spec: Mapping[str, Any] | type, where: str) -> tuple[_JSONSchema, bool]:
    """The object schema a final-result tool takes for a turn's ``output_schema``.

    Args:
        spec: a JSON Schema (draft 2020-12) as a mapping, or an attrs class, whose schema is
            derived as ``@tool`` derives an attrs-class parameter.
        where: error-message prefix (e.g. ``"output_schema"``).
    Returns:
        ``(schema, wrapped)``. ``schema`` is a fresh JSON-ready dict with ``"type": "object"``.
        When ``spec`` is not an object schema, ``wrapped`` is True and ``schema`` is
        ``{"type": "object", "properties": {"value": spec}, "required": ["value"],
        "additionalProperties": false}``, with ``spec``'s top-level ``$defs`` /
        ``definitions`` moved up beside it so its ``$ref`` pointers still resolve.
    Raises:
        ConfigError: ``spec`` is neither a mapping nor an attrs class, is not JSON-serialisable,
            is not a valid draft 2020-12 schema (jsonschema's metaschema check), or is an attrs
            class the derivation cannot handle (an unsupported field annotation, recursion).
    """
    if isinstance(spec, type):
        if not attrs.has(spec):
            raise ConfigError(f"{where}: {spec.__name__} is not an attrs class; pass an attrs class or a JSON Schema")
        schema, _ = Deriver(f"{where} ({spec.__name__})", context_type=_NoContext).derive(spec)
        wrapped = False
    elif isinstance(spec, Mapping):
        try:
            schema = json.loads(json.dumps(dict(spec)))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{where}: the schema is not JSON-serialisable: {exc}") from exc
        wrapped = schema.get("type") != "object"
    else:
        raise ConfigError(f"{where}: expected a JSON Schema (a mapping) or an attrs class, got {spec!r}")
    import jsonschema

    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise ConfigError(f"{where}: not a valid JSON Schema: {exc.message}") from exc
    if not wrapped:
        return schema, False
    outer: _JSONSchema = {}
    for key in ("$defs", "definitions"):
        if key in schema:
            outer[key] = schema.pop(key)
    outer.update(
        type="object", properties={WRAPPED_KEY: schema}, required=[WRAPPED_KEY], additionalProperties=False
    )
    return outer, True
