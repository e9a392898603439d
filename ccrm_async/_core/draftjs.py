"""Readable text from a CCRM note body.

Notes arrive as a Draft.js "raw content" document serialised to a string
(``{"blocks":[{"text":"..."}],"entityMap":{}}``) or as plain text. The plain
text of a Draft.js document is its blocks' texts joined by newlines.
"""

from __future__ import annotations

from . import lenient_json

__all__ = ["plain_text"]


def plain_text(text: str) -> str:
    """The readable text of a note; *text* itself when it is not Draft.js."""
    stripped = text.lstrip()
    if not stripped.startswith("{"):
        return text
    try:
        document = lenient_json.loads(stripped)
    except lenient_json.JSONDecodeError:
        return text
    if not isinstance(document, dict):
        return text
    blocks = document.get("blocks")
    if not isinstance(blocks, list):
        return text
    lines = []
    for block in blocks:
        if isinstance(block, dict):
            value = block.get("text")
            lines.append(value if isinstance(value, str) else "")
    return "\n".join(lines)
