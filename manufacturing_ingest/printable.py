"""Text from the landing zone (object keys, file names, column names, reader errors) as it is
shown to people: in the CLI, in log lines and in alerts.

A key may hold any character S3 accepts, and a local file name any byte: an ESC sequence in a
name would clear the terminal or recolour what follows, a newline would forge a line of its own
(``committed … forged.csv``), a right-to-left override would reverse the rest of the line, and
bytes that are not UTF-8 arrive as lone surrogates that crash an encoder. ``printable`` shows
every such character as an escape (``\\x1b``, ``\\n``, ``\\u202e``, a non-UTF-8 byte as
``\\xfc``) and leaves every letter of every script as it is. The data itself (the ledger, the
``_source_file`` column) keeps the name exactly; only what is shown is escaped.
"""

from __future__ import annotations

import unicodedata

__all__ = ["printable"]

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# Bidirectional controls and other invisible format characters that reorder or hide text.
_INVISIBLE = {"\u061c", "\u200b", "\u200e", "\u200f", "\u2060", "\ufeff",
              *map(chr, range(0x202A, 0x202F)), *map(chr, range(0x2066, 0x206A))}


def printable(text: object, keep_newlines: bool = False) -> str:
    """``text`` (made a string) with control, invisible-format and undecodable characters
    escaped; with ``keep_newlines``, ``\\n`` stays a line break (multi-line alert texts)."""
    text = str(text)
    if text.isprintable() and not _INVISIBLE.intersection(text):
        return text  # the common case, quickly
    out = []
    for ch in text:
        if ch == "\n" and keep_newlines:
            out.append(ch)
        elif ch in _NAMED:
            out.append(_NAMED[ch])
        elif 0xDC80 <= ord(ch) <= 0xDCFF:  # a byte that was not UTF-8 (surrogateescape)
            out.append(f"\\x{ord(ch) - 0xDC00:02x}")
        elif ch in _INVISIBLE or unicodedata.category(ch) in ("Cc", "Cs", "Zl", "Zp"):
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(ch)
    return "".join(out)
