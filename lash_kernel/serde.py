"""THE converter: every kernel record is (de)serialised here and nowhere else.

Rule: tagged unions use each class's stable ``KIND`` string (never the class name) under the
``kind`` key. Persisted data is read leniently (unknown keys are ignored, so newer writers stay
readable); decoding errors are raised as ``RecordDecodeError`` with readable paths.
"""

from __future__ import annotations

import gc
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import attrs
import cattrs
import orjson
from cattrs.preconf.json import JsonConverter, make_converter
from cattrs.strategies import configure_tagged_union

from lash_kernel.errors import LashError, RecordDecodeError
from lash_kernel.messages import Attachment, Message, Part
from lash_kernel.outcomes import Outcome
from lash_kernel.usage import TokenUsage, UsageKey, UsageLedger

__all__ = [
    "converter",
    "decode_plugin_record",
    "dumps",
    "encode_plugin_record",
    "loads",
    "loads_messages",
    "prebuild",
    "structure",
    "unstructure",
]

T = TypeVar("T")


def _kind(cls: type) -> str:
    """A record class's stable wire tag (its ``KIND`` class variable)."""
    return str(getattr(cls, "KIND"))


def _build() -> JsonConverter:
    c = make_converter(omit_if_default=True)
    for union in (Part, Outcome):
        configure_tagged_union(union, c, tag_name="kind", tag_generator=_kind)
    c.register_structure_hook(Message, _structure_message)
    return c


_new = object.__new__
_set = object.__setattr__


def _part_decoder(cls: type) -> Any:
    """A decoder for one part class: reads the class's fields from a wire dict (unknown keys
    ignored, missing optional ones defaulted, a missing required one a ``KeyError``) and fills
    a new instance directly, as attrs' own generated ``__init__`` would (these classes have no
    validators or converters). Generated once per class, like cattrs' structure functions."""
    lines = ["def decode(raw):", "    obj = _new(cls)"]
    for field in attrs.fields(cls):
        if field.default is attrs.NOTHING:
            lines.append(f"    _set(obj, {field.name!r}, raw[{field.name!r}])")
        elif field.name == "attachments":
            lines.append("    _set(obj, 'attachments', _attachments(raw.get('attachments')))")
        else:
            lines.append(f"    _set(obj, {field.name!r}, raw.get({field.name!r}, {field.default!r}))")
    lines.append("    return obj")
    namespace = {"_new": object.__new__, "_set": object.__setattr__, "cls": cls, "_attachments": _attachments}
    exec("\n".join(lines), namespace)  # the code is built from the class's own field names
    return namespace["decode"]


def _attachments(raw: Any) -> tuple[Attachment, ...]:
    if not raw:
        return ()
    return tuple(Attachment(media_type=a["media_type"], data=a["data"], name=a.get("name", "")) for a in raw)


_PART_DECODERS = {cls.KIND: _part_decoder(cls) for cls in Part.__args__}
_ROLES = frozenset(("system", "user", "assistant", "tool"))


def _decode_part(raw: Any) -> Part:
    decode = _PART_DECODERS.get(raw.get("kind"))
    if decode is None:
        raise ValueError(f"unknown message part kind {raw.get('kind')!r}")
    return decode(raw)


def _structure_message(data: Any, _: Any) -> Message:
    """Messages are most of what a session stores, so they get a direct decoder.

    Same wire shape and leniency as the generated one (unknown keys ignored), about 4x faster,
    which keeps loading a long session cheap. Bad data raises and is wrapped by ``structure``.
    """
    role = data["role"]
    if role not in _ROLES:
        raise ValueError(f"unknown message role {role!r}")
    message = _new(Message)
    _set(message, "role", role)
    _set(message, "parts", tuple([_decode_part(raw) for raw in data.get("parts", ())]))
    return message


converter = _build()


def prebuild(*types: Any) -> None:
    """Build the unstructure hooks of ``types`` now rather than on first use, and keep them.

    cattrs builds a class's hook the first time it meets the class and keeps it in a cache it
    clears whenever it builds a hook for a new container type (``tuple[Node, ...]``), so left
    alone the first turns of a process build the hooks of ``Message`` and ``UsageLedger``
    more than once. A prebuilt attrs-class hook is registered as the class's own hook, which no
    cache reset drops; container hooks are built after it (registering a class hook makes
    cattrs forget the container hooks it built, so those built before are built again).
    Called at import for the types every turn writes (here and by the stores), so the first
    turn in a process costs what the next one does.

    Args:
        types: attrs classes, or container types (``tuple[Node, ...]``, ``dict``).
    """
    classes = [t for t in types if isinstance(t, type) and attrs.has(t)]
    for cls in classes:
        converter.register_unstructure_hook(cls, converter.get_unstructure_hook(cls))
    _CONTAINERS.extend(t for t in types if t not in classes and t not in _CONTAINERS)
    for type_ in _CONTAINERS:
        converter.get_unstructure_hook(type_)


#: The container types ``prebuild`` was given, built again after each class registration.
_CONTAINERS: list[Any] = []

prebuild(Message, TokenUsage, UsageKey, UsageLedger, tuple[str, ...], dict)


def unstructure(obj: Any, type_: Any = None) -> Any:
    """Turn a record into JSON-ready builtins (dicts, lists, str, numbers)."""
    return converter.unstructure(obj, unstructure_as=type_)


def structure(data: Any, type_: type[T]) -> T:
    """Build a ``type_`` record from builtins. Raises ``RecordDecodeError``."""
    try:
        return converter.structure(data, type_)
    except Exception as exc:  # cattrs raises ExceptionGroups; flatten them for humans
        lines = cattrs.transform_error(exc) if isinstance(exc, cattrs.BaseValidationError) else [str(exc)]
        name = getattr(type_, "__name__", str(type_))
        raise RecordDecodeError(f"cannot decode {name}: " + "; ".join(lines)) from exc


def loads_messages(texts: Sequence[str]) -> list[Message]:
    """Decode many stored messages (each its JSON text) at once: one JSON parse for all of
    them (orjson: about 1.5x faster than ``json`` here) and the direct message decoder, a few
    µs a message (what loading a session costs). The cyclic garbage collector is paused
    meanwhile (every record is acyclic, and a long history would otherwise trigger several
    collections of the host's whole heap) and left as it was found.

    Args:
        texts: JSON texts of messages, as ``dumps(message, Message)`` wrote them.
    Returns:
        The messages, in order.
    Raises:
        RecordDecodeError: some text is not a valid message (the message says which position;
            decode it alone with ``loads`` for the details).
    """
    if not texts:
        return []
    pause = gc.isenabled()  # the records are acyclic: no collection can free any of them
    if pause:
        gc.disable()
    try:
        return _loads_messages(texts)
    finally:
        if pause:
            gc.enable()


def _loads_messages(texts: Sequence[str]) -> list[Message]:
    try:
        raws = orjson.loads("[" + ",".join(texts) + "]")
    except ValueError as exc:  # orjson.JSONDecodeError is a ValueError
        raise RecordDecodeError(f"invalid JSON among {len(texts)} stored messages: {exc}") from exc
    out = []
    for index, raw in enumerate(raws):
        try:
            out.append(_structure_message(raw, Message))
        except Exception as exc:
            raise RecordDecodeError(f"cannot decode message {index} of {len(texts)}: {exc!r}") from exc
    return out


def dumps(obj: Any, type_: Any = None) -> str:
    """Serialise a record to compact JSON text."""
    return converter.dumps(obj, unstructure_as=type_, separators=(",", ":"), ensure_ascii=False)


def loads(data: str | bytes, type_: type[T]) -> T:
    """Parse JSON text into a ``type_`` record. Raises ``RecordDecodeError``."""
    try:
        raw = converter.loads(data, Any)
    except ValueError as exc:
        raise RecordDecodeError(f"invalid JSON for {getattr(type_, '__name__', type_)}: {exc}") from exc
    return structure(raw, type_)


# ------------------------------------------------------------------------------------ plugin records
def encode_plugin_record(record: object, record_types: Mapping[str, tuple[str, type]]) -> str:
    """Serialise a plugin's state record as ``{"kind": KIND, "data": {...}}`` JSON text.

    Args:
        record: an instance of a class registered with ``lash_register_record_types``.
        record_types: the core's registered record classes, ``KIND -> (plugin, class)``.
    Returns:
        Compact JSON text.
    Raises:
        LashError: the record's type was not registered with ``lash_register_record_types``.
    """
    kind = getattr(type(record), "KIND", None)
    if not isinstance(kind, str) or record_types.get(kind, (None, None))[1] is not type(record):
        raise LashError(f"{type(record).__name__} is not a registered record type (lash_register_record_types)")
    return dumps({"kind": kind, "data": unstructure(record, type(record))})


def decode_plugin_record(text: str, record_types: Mapping[str, tuple[str, type]]) -> object:
    """Inverse of ``encode_plugin_record``.

    Args:
        text: JSON text written by ``encode_plugin_record``.
        record_types: the core's registered record classes, ``KIND -> (plugin, class)``.
    Returns:
        The record, an instance of the class registered for its ``kind``.
    Raises:
        RecordDecodeError: bad JSON, an unknown kind, or data that does not fit the class.
    """
    raw = loads(text, dict)
    kind = raw.get("kind")
    entry = record_types.get(kind) if isinstance(kind, str) else None
    if entry is None:
        raise RecordDecodeError(f"no registered record type for kind {raw.get('kind')!r}")
    return structure(raw.get("data", {}), entry[1])
