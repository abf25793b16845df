"""The customer's side: a complaint letter composed from the guided form's answers, and tone
hints (advisory, never blocking) for shouting and threats."""

from __future__ import annotations

import re
from typing import Any

from flask_babel import gettext as _

# Words that read as threats, in English, Icelandic, Hebrew and Greek (matched case-folded).
THREATS = re.compile(
    r"\b(lawyers?|attorneys?|solicitors?|courts?|sue[sd]?|suing|lawsuits?|legal action"
    r"|lögfræðing\w*|lögm[ae]nn\w*|lögmaður\w*|dómstól\w*|málsókn\w*|kæri yður"
    r"|δικηγόρ\w*|δικαστήρι\w*|μήνυσ\w*|μηνύσ\w*|αγωγ\w*)\b"
    r"|עורך דין|עורכי דין|עו\"ד|עו״ד|בית משפט|בית המשפט|תביעה|אתבע|לתבוע|נתבע אתכם",
    re.IGNORECASE,
)
EXCLAIMS = re.compile(r"!{3,}")
# A run of capitals: at least this many upper-case letters in consecutive upper-case words.
SHOUT_LETTERS = 12
ANSWER_FIELDS = (
    "relation",
    "product",
    "incident_date",
    "place",
    "order_reference",
    "story",
    "cost_details",
    "outcome_wanted",
    "outcome_other",
    "amount_claimed",
    "currency",
)
MAX_ANSWER = 20_000


def _shouting(text: str) -> bool:
    run = 0
    for word in text.split():
        letters = [ch for ch in word if ch.isalpha()]
        if len(letters) >= 2 and all(ch.isupper() for ch in letters):
            run += len(letters)
            if run >= SHOUT_LETTERS:
                return True
        elif letters:
            run = 0
    return False


def tone_hints(text: str) -> list[str]:
    """Friendly notes on the letter's tone; they never stop it being sent."""
    hints = []
    if _shouting(text) or EXCLAIMS.search(text):
        hints.append(
            _(
                "Capitals and rows of exclamation marks read as shouting. A calm letter is "
                "read more kindly and resolved faster."
            )
        )
    if THREATS.search(text):
        hints.append(
            _(
                "Mentioning lawyers or court reads as a threat. Respect gets respect back: "
                "letters that ask calmly are resolved faster."
            )
        )
    return hints


def _outcome_phrases() -> dict[str, str]:
    return {
        "refund": _("a refund"),
        "replacement": _("a replacement"),
        "repair": _("a repair"),
        "gift_certificate": _("a gift certificate"),
        "apology": _("an apology"),
    }


def _cost_phrases() -> dict[str, str]:
    return {"money": _("money"), "time": _("time"), "embarrassment": _("embarrassment")}


def _clean(value: Any) -> str:
    return value.strip()[:MAX_ANSWER] if isinstance(value, str) else ""


def compose(answers: dict[str, Any], costs: list[str], name: str) -> dict[str, str]:
    """The letter composed from the answers, following the guide: open positively, tell the
    story, state the cost and the outcome wanted, thank. Returns ``subject`` and ``text``."""
    a = {field: _clean(answers.get(field)) for field in ANSWER_FIELDS}
    what = a["product"] or _("my purchase")
    order = _(" (order %(ref)s)", ref=a["order_reference"]) if a["order_reference"] else ""
    problem = _("I had a problem with %(what)s%(order)s.", what=what, order=order)
    if a["incident_date"] and a["place"]:
        problem = (
            _("On %(date)s at %(place)s: ", date=a["incident_date"], place=a["place"]) + problem
        )
    elif a["incident_date"] or a["place"]:
        problem = _("On %(date)s: ", date=a["incident_date"] or a["place"]) + problem
    paragraphs = [
        (a["relation"] or _("I am writing to you as your client")).rstrip(".") + ".",
        f"{problem} {a['story']}".strip(),
    ]
    phrases = _cost_phrases()
    named = ", ".join(phrases[c] for c in costs if c in phrases)
    if named or a["cost_details"]:
        details = ": ".join(part for part in (named, a["cost_details"]) if part)
        paragraphs.append(_("It cost me %(details)s", details=details).rstrip(".") + ".")
    outcome = _outcome_phrases().get(a["outcome_wanted"]) or a["outcome_other"]
    if outcome and a["amount_claimed"]:
        paragraphs.append(
            _(
                "To put it right, I would like %(outcome)s of %(amount)s %(currency)s.",
                outcome=outcome,
                amount=a["amount_claimed"],
                currency=a["currency"],
            )
        )
    elif outcome:
        paragraphs.append(_("To put it right, I would like %(outcome)s.", outcome=outcome))
    paragraphs.append(_("Thank you for looking into this; I look forward to your answer."))
    if name.strip():
        paragraphs.append(name.strip())
    return {"subject": _("Complaint: %(what)s", what=what)[:200], "text": "\n\n".join(paragraphs)}
