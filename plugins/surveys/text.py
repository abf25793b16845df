"""The words of the survey: the SMS template per language (checked on save, filled in when a
survey is scheduled), its length in SMS segments, and reading a score from a reply."""

from __future__ import annotations

import math
import re
import string
import unicodedata
from typing import Any

FIELDS = ("agent", "reference", "customer", "helpdesk")
MAX_TEMPLATE_LENGTH = 1000
DEFAULT_TEMPLATES = {
    "en": "How did {agent} help you with request {reference}? "
    "Reply 1 (poor) to 5 (excellent). Reply STOP to opt out.",
    "is": "Hvernig aðstoðaði {agent} þig með erindi {reference}? "
    "Svaraðu 1 (slæmt) til 5 (frábært). Svaraðu STOP til að afþakka.",
    "he": "איך {agent} עזר/ה לך בפנייה {reference}? השב/י 1 (גרוע) עד 5 (מצוין). השב/י STOP להסרה.",
    "el": "Πώς σας βοήθησε ο/η {agent} με το αίτημα {reference}; "
    "Απαντήστε 1 (κακή) έως 5 (άριστη). Απαντήστε STOP για διαγραφή.",
}
ASK_AGAIN = {
    "en": "Sorry, we did not understand. Please reply with a number from 1 (poor) to 5 "
    "(excellent).",
    "is": "Afsakið, við skildum þetta ekki. Svaraðu með tölu frá 1 (slæmt) til 5 (frábært).",
    "he": "סליחה, לא הבנו. נא להשיב במספר מ-1 (גרוע) עד 5 (מצוין).",
    "el": "Συγγνώμη, δεν καταλάβαμε. Απαντήστε με έναν αριθμό από 1 (κακή) έως 5 (άριστη).",
}
OPT_OUT_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
OPT_IN_WORDS = frozenset({"START", "UNSTOP", "YES"})

# GSM 03.38: the basic set (one septet each) and the extension table (two septets each).
GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENDED = frozenset("^{}\\[~]|€\f")


class TemplateError(ValueError):
    """A template that cannot be filled in (a syntax error or an unknown field)."""


def check_template(body: str) -> str:
    """``body`` if it is a valid template; else ``TemplateError`` saying what is wrong."""
    text = body.strip()
    if not text:
        raise TemplateError("must not be empty")
    if len(text) > MAX_TEMPLATE_LENGTH:
        raise TemplateError(f"must be at most {MAX_TEMPLATE_LENGTH} characters")
    try:
        parts = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise TemplateError(f"syntax error: {exc} (write {{{{ and }}}} for a brace)") from None
    for _literal, field, spec, conversion in parts:
        if field is None:
            continue
        if field not in FIELDS or spec or conversion:
            raise TemplateError(
                f"unknown field {{{field}}}; use " + ", ".join(f"{{{f}}}" for f in FIELDS)
            )
    return text


def fill(body: str, values: dict[str, Any]) -> str:
    """The template ``body`` (already checked) with its fields filled in."""
    return body.format(**{name: str(values.get(name, "")) for name in FIELDS})


def segments(text: str) -> dict[str, Any]:
    """How ``text`` travels as SMS: ``encoding`` (GSM-7 or UCS-2), ``characters`` and
    ``segments`` (concatenated parts: 153 septets / 67 UCS-2 units each beyond one)."""
    if all(ch in GSM_BASIC or ch in GSM_EXTENDED for ch in text):
        units = sum(2 if ch in GSM_EXTENDED else 1 for ch in text)
        single, part, encoding = 160, 153, "GSM-7"
    else:
        units = len(text.encode("utf-16-le")) // 2
        single, part, encoding = 70, 67, "UCS-2"
    count = 1 if units <= single else math.ceil(units / part)
    return {"encoding": encoding, "characters": len(text), "units": units, "segments": count}


def _plain(word: str) -> str:
    """``word`` case-folded and without accents (Greek τόνος, Icelandic marks stay letters)."""
    decomposed = unicodedata.normalize("NFD", word.casefold())
    return "".join(ch for ch in decomposed if unicodedata.category(ch) != "Mn")


_WORDS = {
    1: "one einn ein eitt eina einum einni einu אחת אחד ένα ένας μία μια έναν",
    2: "two tveir tvær tvö tvo tveimur שתיים שניים שתים שני שתי δύο δυο",
    3: "three þrír þrjár þrjú þrjá þremur שלוש שלושה τρία τρεις",
    4: "four fjórir fjórar fjögur fjóra fjórum ארבע ארבעה τέσσερα τέσσερις",
    5: "five fimm חמש חמישה πέντε",
}
NUMBER_WORDS = {_plain(word): score for score, words in _WORDS.items() for word in words.split()}
STARS = frozenset("⭐★")
_SEPARATORS = " \t\r\n-–—:;,.!?/|"
_WORD = re.compile(r"\w+", re.UNICODE)


def read_score(text: str) -> tuple[int, str] | None:
    """The score 1-5 at the start of a reply and the rest as the comment, or ``None``.

    Digits of any script (``5``, ``٥``, ``５``), number words (English, Icelandic, Hebrew and
    Greek, every gender) and star emoji (with or without U+FE0F) count. ``0``, ``6``, ``11``,
    ``-1`` and ``4.5`` do not.
    """
    reply = text.strip()
    score, rest = _digits(reply) or _stars(reply) or _word(reply) or (None, "")
    if score is None or not 1 <= score <= 5:
        return None
    return score, rest.lstrip(_SEPARATORS).strip()


def _digits(reply: str) -> tuple[int, str] | None:
    end = 0
    while end < len(reply) and unicodedata.decimal(reply[end], None) is not None:
        end += 1
    if end == 0:
        return None
    rest = reply[end:]
    if rest[:1] in (".", ",", "٫") and rest[1:2] and unicodedata.decimal(rest[1], None) is not None:
        return 0, ""  # a fraction such as 4.5: not a score
    return int("".join(str(unicodedata.decimal(ch)) for ch in reply[:end])), rest


def _stars(reply: str) -> tuple[int, str] | None:
    count, index = 0, 0
    while index < len(reply) and (reply[index] in STARS or reply[index] in "\ufe0f "):
        count += reply[index] in STARS
        index += 1
    return (count, reply[index:]) if count else None


def _word(reply: str) -> tuple[int, str] | None:
    match = _WORD.match(reply)
    if match is None:
        return None
    score = NUMBER_WORDS.get(_plain(match.group(0)))
    return None if score is None else (score, reply[match.end() :])


def keyword(text: str) -> str:
    """``"opt_out"`` or ``"opt_in"`` when the reply is one of the carriers' keywords, else
    ``""``."""
    word = text.strip().strip(".!").upper()
    if word in OPT_OUT_WORDS:
        return "opt_out"
    if word in OPT_IN_WORDS:
        return "opt_in"
    return ""
