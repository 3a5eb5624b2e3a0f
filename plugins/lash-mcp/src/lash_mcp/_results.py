"""Map an MCP ``CallToolResult`` to a lash ``ToolOutput``.

Rule: pure function over duck-typed content blocks (the ``mcp.types`` models), so it needs no
``mcp`` import and is unit-tested with the real types.

- ``text`` blocks: joined with newlines; that is what the model reads.
- ``structuredContent``: used as JSON text when there is no text block (servers SHOULD also
  send it serialised as text, and then the text is used as is).
- ``image`` / ``audio`` blocks: ``Attachment(media_type, data)`` (base64 as the server sent it).
- embedded resources: text resources as ``[resource <uri>]`` + their text; blob resources as
  an attachment named by their URI; ``resource_link`` blocks as a ``[resource link ...]`` line.
- ``isError``: ``ToolOutput(is_error=True)``.
"""

from __future__ import annotations

import json
from typing import Any

from lash_kernel.plugin import Attachment, ToolOutput

__all__ = ["to_tool_output"]


def to_tool_output(result: Any) -> ToolOutput:
    """Turn a ``CallToolResult`` into what the model sees.

    Args:
        result: an ``mcp.types.CallToolResult`` (fields ``content``, ``structured_content``,
            ``is_error``).
    Returns:
        A ``ToolOutput``: ``text`` (text blocks, resources, or structured content as JSON),
        ``attachments`` (images, audio and binary resources, base64) and ``is_error``.
    """
    texts: list[str] = []
    attachments: list[Attachment] = []
    for block in result.content or ():
        kind = getattr(block, "type", None)
        if kind == "text":
            texts.append(block.text)
        elif kind in ("image", "audio"):
            attachments.append(Attachment(media_type=block.mime_type, data=block.data))
        elif kind == "resource":
            res = block.resource
            uri = str(res.uri)
            if getattr(res, "text", None) is not None:
                texts.append(f"[resource {uri}]\n{res.text}")
            else:
                media = getattr(res, "mime_type", None) or "application/octet-stream"
                attachments.append(Attachment(media_type=media, data=res.blob, name=uri))
        elif kind == "resource_link":
            label = f"[resource link {block.uri}"
            if getattr(block, "name", None):
                label += f" ({block.name})"
            if getattr(block, "description", None):
                label += f": {block.description}"
            texts.append(label + "]")
        else:
            texts.append(f"[unsupported MCP content block {kind!r}]")
    structured = getattr(result, "structured_content", None)
    if not texts and structured is not None:
        texts.append(json.dumps(structured, ensure_ascii=False))
    text = "\n".join(texts)
    if not text and attachments:
        text = "[" + ", ".join(a.name or a.media_type for a in attachments) + "]"
    return ToolOutput(text=text, attachments=tuple(attachments), is_error=bool(getattr(result, "is_error", False)))
