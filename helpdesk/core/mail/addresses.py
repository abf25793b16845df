"""Strict e-mail address parsing (CVE-2023-27043).

Old ``email.utils.parseaddr`` read ``"a@b.c"@evil.example`` as ``a@b.c``: a sender could pass
for someone else's domain. Here an address is only accepted when the header parses cleanly
into plain ``local@domain`` parts, with no quoting, no second ``@`` and no stray characters.
"""

from __future__ import annotations

import email.utils
import functools
import inspect
import re
from email.headerregistry import HeaderRegistry

_STRICT = "strict" in inspect.signature(email.utils.getaddresses).parameters
_REGISTRY = HeaderRegistry()
# A dot-atom local part and domain (non-ASCII letters allowed, as SMTPUTF8 does).
_LOCAL = re.compile(r"[^\s\"@<>()\[\],;:\\]+")
_DOMAIN = re.compile(r"[^\s\"@<>()\[\],;:\\.]+(\.[^\s\"@<>()\[\],;:\\.]+)*")
MAX_ADDRESS_LENGTH = 254
_ATEXT = r"[A-Za-z0-9!#$%&'*+/^_`{|}~-]+"
_LOCAL_ATOM = r"[A-Za-z0-9=?!#$%&'*+/^_`{|}~-]+"
_ADDR_SPEC = rf"{_LOCAL_ATOM}(?:\.{_LOCAL_ATOM})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
_SIMPLE = re.compile(rf"\s*(?:({_ATEXT}(?: {_ATEXT})*)?\s*<({_ADDR_SPEC})>|({_ADDR_SPEC}))\s*")


def _valid(address: str) -> bool:
    local, at, domain = address.rpartition("@")
    return bool(
        at
        and len(address) <= MAX_ADDRESS_LENGTH
        and _LOCAL.fullmatch(local)
        and not local.startswith(".")
        and not local.endswith(".")
        and ".." not in local
        and _DOMAIN.fullmatch(domain)
    )


def simple_pair(value: str) -> tuple[str, str] | None:
    """``(display name, address)`` of a plain ``Name <local@domain>`` or ``local@domain``
    (ASCII words of letters, digits and atext signs but ``=`` and ``?``, so no encoded word;
    no quotes, comments, dots or doubled spaces in the name), or ``None`` for anything else:
    such a value parses to exactly these parts, so the full parser can be skipped."""
    match = _SIMPLE.fullmatch(value)
    if match is None:
        return None
    name, bracketed, bare = match.groups()
    return (name or "", bracketed or bare)


def _pairs(values: list[str]) -> list[tuple[str, str]]:
    return [pair for value in values for pair in _pairs_of(value)]


@functools.lru_cache(maxsize=4096)
def _pairs_of(value: str) -> tuple[tuple[str, str], ...]:
    """The pairs of one header value (remembered: the help desk's own address is in the To of
    nearly every mail, and a customer writes more than once)."""
    simple = simple_pair(value)
    if simple is not None:
        return (simple,)
    if _STRICT:  # Python 3.11.10+, 3.12.6+
        return tuple(email.utils.getaddresses([value], strict=True))
    try:
        header = _REGISTRY("to", value)
    except Exception:  # the header parser raises on some hostile input; that is no address
        return ()
    if any(type(d).__name__ != "ObsoleteHeaderDefect" for d in header.defects):
        return ()
    return tuple((address.display_name, address.addr_spec) for address in header.addresses)


def parse_addresses(values: list[str]) -> list[tuple[str, str]]:
    """The ``(display name, address)`` pairs of address headers, keeping only addresses that
    are plainly ``local@domain``; anything ambiguous is left out rather than guessed."""
    return [(name, address) for name, address in _pairs(values) if address and _valid(address)]


def parse_address(value: str) -> tuple[str, str] | None:
    """The one sender of a ``From`` (or ``Sender``) header, or ``None`` when it does not
    name exactly one valid address."""
    pairs = _pairs([value]) if value else []
    if len(pairs) != 1 or not pairs[0][1] or not _valid(pairs[0][1]):
        return None
    return pairs[0]
