"""Splitting a mail body into what is new and what is quoted history or signature, so the
agent view can fold the old part away (it stays in the stored message, whole)."""

from __future__ import annotations

import re
from dataclasses import dataclass

# Lines that start the quoted history in the common mail clients, in several languages.
_HISTORY = re.compile(
    r"""^(
        -{2,}\s*(Original\ Message|Ursprüngliche\ Nachricht|Message\ d'origine)\s*-{2,}
      | _{20,}
      | On\ .{4,200}\ wrote:
      | Le\ .{4,200}\ a\ écrit\s?:
      | Am\ .{4,200}\ schrieb\ .{0,200}:
      | El\ .{4,200}\ escribió:
      | Op\ .{4,200}\ geschreven:
      | From:\s.{1,300}\nSent:\s
      | Von:\s.{1,300}\nGesendet:\s
    )""",
    re.VERBOSE | re.MULTILINE | re.IGNORECASE,
)
_SIGNATURE = re.compile(r"^-- ?$", re.MULTILINE)
_QUOTED_LINE = re.compile(r"^\s*>")


@dataclass(frozen=True)
class Folded:
    """A body split in two: ``new`` is shown, ``quoted`` is folded (may be empty)."""

    new: str
    quoted: str


def _trailing_quote_start(lines: list[str]) -> int | None:
    """Where the last block of ``>`` lines begins, if only such lines (or blanks) follow."""
    start = None
    for index in range(len(lines) - 1, -1, -1):
        line = lines[index]
        if _QUOTED_LINE.match(line):
            start = index
        elif line.strip():
            break
    return start


def split_quoted(body: str) -> Folded:
    """Split ``body`` at the first quote header (``On … wrote:``, ``-----Original
    Message-----``, Outlook's ``From:/Sent:``), signature delimiter (``-- ``) or trailing
    block of ``>`` lines. A body that would be all quote is left whole."""
    cuts = [m.start() for m in (_HISTORY.search(body), _SIGNATURE.search(body)) if m]
    lines = body.split("\n")
    quote_line = _trailing_quote_start(lines)
    if quote_line is not None:
        cuts.append(len("\n".join(lines[:quote_line])) + (1 if quote_line else 0))
    cut = min(cuts, default=len(body))
    new, quoted = body[:cut].rstrip(), body[cut:].strip("\n")
    if not new.strip():
        return Folded(body, "")
    return Folded(new, quoted)
