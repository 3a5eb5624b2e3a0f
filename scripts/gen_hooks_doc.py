"""Regenerate docs/hooks.md from lash_kernel/hookspecs.py: ``python scripts/gen_hooks_doc.py``."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

from lash_kernel import hookspecs

OUT = Path(__file__).resolve().parents[1] / "docs" / "hooks.md"
_BANNER = re.compile(r"# -{10,} (\w+)\n((?:.|\n)*?)(?=\n# -{10,}|\Z)")


def render() -> str:
    """The whole hooks reference as Markdown."""
    groups = _BANNER.findall(inspect.getsource(hookspecs))
    rules = (inspect.getdoc(hookspecs) or "").split("Rules for all hooks:")[1].strip()
    out = [
        "# Hooks reference",
        "",
        "Every hook a lash plugin can implement, generated from `lash_kernel/hookspecs.py` (the source of",
        "truth; regenerate with `python scripts/gen_hooks_doc.py`, and `tests/test_hookspecs.py` checks",
        "the two agree). See `docs/plugins.md` for writing and publishing a plugin.",
        "",
        "General rules:",
        "",
        rules,
        "",
        "| group | hooks |",
        "|---|---|",
    ]
    for group, body in groups:
        names = re.findall(r"^def (lash_\w+)", body, re.M)
        out.append(f"| {group} | " + ", ".join(f"[`{n}`](#{n})" for n in names) + " |")
    out.append("")
    for group, body in groups:
        out += [f"## {group.capitalize()} hooks", ""]
        for name in re.findall(r"^def (lash_\w+)", body, re.M):
            fn = getattr(hookspecs, name)
            sig = str(inspect.signature(fn)).replace("'", "")
            out += [f"### {name}", "", "```python", "@hookimpl", f"def {name}{sig}", "```", ""]
            if getattr(fn, "lash_spec", {}).get("firstresult"):
                out += ["*firstresult*: the first non-None result wins.", ""]
            out += [inspect.getdoc(fn) or "", ""]
    return "\n".join(out).rstrip() + "\n"


if __name__ == "__main__":
    OUT.write_text(render())
    print(OUT)
