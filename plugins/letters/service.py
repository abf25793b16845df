"""The rules of the letters plugin: a ticket's claim (what the customer asks for) and its
resolution (what was granted), the template library with its versions, and filling a
template in for a ticket. Views and the API call these."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from datetime import date
from decimal import Decimal
from typing import Any

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import Row, bindparam, select, true

from helpdesk import (
    Agent,
    Conflict,
    Customer,
    Order,
    Ticket,
    ValidationError,
    call_each,
    clean_currency,
    currency_places,
    db,
    parse_amount,
    update_ticket,
    utcnow,
)
from plugins.letters import render
from plugins.letters.models import (
    COSTS,
    GRANTS,
    MONEY_PLACES,
    OUTCOMES,
    Claim,
    LetterTemplate,
    LetterTemplateVersion,
)
from plugins.letters.seed import SEED_TEMPLATES

# The variables every letter may use: {namespace: {field: description}}.
VARIABLES: dict[str, dict[str, str]] = {
    "customer": {
        "name": "the customer's name (or e-mail address)",
        "since": "when they became a client (a date)",
        "category": "their client category, if a plugin gives one",
    },
    "ticket": {"reference": "the ticket's reference, e.g. #1234", "subject": "its subject"},
    "claim": {
        "outcome_wanted": "what the customer asks for (refund, replacement, ...)",
        "amount_claimed": "the amount asked for",
        "currency": "its currency",
        "incident_date": "when it happened",
        "order_reference": "the order concerned",
        "costs": "what it cost them (money, time, embarrassment)",
        "granted": "what was granted",
        "granted_amount": "the amount granted",
        "code": "a gift certificate's code",
        "reason": "why a claim was declined",
    },
    "order": {
        "reference": "the order's reference",
        "date": "when it was placed",
        "amount": "its amount",
        "currency": "its currency",
    },
    "agent": {"name": "the agent's name", "signature": "the agent's signature"},
}
MAX_REFERENCE = 100
MAX_REASON = 2000
MAX_NAME = 120
LANGUAGE_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-")


# --- claims -------------------------------------------------------------------------------


def clean_claim(data: Any, prefix: str = "claim.") -> dict[str, Any]:
    """The claim in ``data`` checked: every problem is reported at once, each under
    ``<prefix><field>``. ``amount_claimed`` is optional; with it, ``currency`` is required."""
    if not isinstance(data, dict):
        raise ValidationError({prefix.rstrip("."): _("must be an object")})
    errors: dict[str, str] = {}
    clean: dict[str, Any] = {}

    def check(field: str, parse: Any) -> None:
        try:
            clean[field] = parse(data.get(field))
        except ValidationError as exc:
            errors[prefix + field] = next(iter(exc.errors.values()))

    check("outcome_wanted", lambda v: _choice(v, OUTCOMES))
    check("currency", _optional_currency)
    check("amount_claimed", _optional_amount)
    check("incident_date", _incident_date)
    check("order_reference", lambda v: _text(v, MAX_REFERENCE))
    check("costs", _costs)
    amount, currency = clean.get("amount_claimed"), clean.get("currency")
    if amount is not None and "currency" in clean and currency is None:
        errors[prefix + "currency"] = _("is required with an amount")
    elif amount is not None and currency and amount != round(amount, currency_places(currency)):
        errors[prefix + "amount_claimed"] = _(
            "has more decimals than %(currency)s has", currency=currency
        )
    if errors:
        raise ValidationError(errors)
    return clean


def _choice(value: Any, choices: Iterable[str]) -> str:
    if value not in choices:
        raise ValidationError({"": _("must be one of: %(c)s", c=", ".join(choices))})
    return value


def _text(value: Any, limit: int) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValidationError({"": _("must be text")})
    if len(value.strip()) > limit:
        raise ValidationError({"": _("is longer than %(n)s characters", n=limit)})
    return value.strip()


def _optional_amount(value: Any) -> Decimal | None:
    if value in (None, ""):
        return None
    amount = parse_amount(value)
    if amount < 0:
        raise ValidationError({"": _("must not be negative")})
    if amount >= Decimal(10) ** 12 or amount != round(amount, MONEY_PLACES):
        raise ValidationError({"": _("is not an amount we can record")})
    return amount


def _optional_currency(value: Any) -> str | None:
    return None if value in (None, "") else clean_currency(value)


def _incident_date(value: Any) -> date | None:
    if value in (None, ""):
        return None
    if isinstance(value, str) and len(value) <= 10:
        try:
            day = date.fromisoformat(value)
        except ValueError:
            day = None
        if day is not None:
            if day > utcnow().date():
                raise ValidationError({"": _("is in the future")})
            if day.year < 1900:
                raise ValidationError({"": _("is too long ago")})
            return day
    raise ValidationError({"": _("must be a date like 2026-11-25")})


def _costs(value: Any) -> list[str]:
    if value in (None, ""):
        return []
    if not isinstance(value, list) or any(item not in COSTS for item in value):
        raise ValidationError({"": _("must be a list of: %(c)s", c=", ".join(COSTS))})
    return [cost for cost in COSTS if cost in value]


def store_claim(ticket: Ticket, clean: dict[str, Any], *, new_ticket: bool = False) -> Claim:
    """Give ``ticket`` the checked claim (replacing one it has; a ``new_ticket`` has none, so
    nothing is looked up); not committed."""
    claim = None if new_ticket else db.session.get(Claim, ticket.id)
    claim = claim or Claim(ticket_id=ticket.id)
    claim.outcome_wanted = clean["outcome_wanted"]
    claim.amount_claimed = clean["amount_claimed"]
    claim.currency = clean["currency"]
    claim.incident_date = clean["incident_date"]
    claim.order_reference = clean["order_reference"]
    claim.costs = ",".join(clean["costs"])
    db.session.add(claim)
    return claim


def set_claim(ticket: Ticket, data: Any) -> Claim:
    """An agent adds (or corrects) the claim of a ticket, e.g. a complaint that came by mail."""
    claim = store_claim(ticket, clean_claim(data, prefix=""))
    db.session.commit()
    return claim


_CLAIM_OF = select(Claim).where(Claim.ticket_id == bindparam("ticket_id"))


def claim_of(ticket: Ticket) -> Claim | None:
    """The ticket's claim, if it has one."""
    return db.session.scalar(_CLAIM_OF, {"ticket_id": ticket.id})


def outcome_labels() -> dict[str, str]:
    """What an agent reads for each outcome a claim asks for or was granted."""
    return {
        "refund": _("Refund"),
        "replacement": _("Replacement"),
        "repair": _("Repair"),
        "gift_certificate": _("Gift certificate"),
        "apology": _("Apology"),
        "other": _("Other"),
        "declined": _("Declined"),
    }


_CLAIMS_OF = select(Claim).where(Claim.ticket_id.in_(bindparam("ids", expanding=True)))


def claims_of(ticket_ids: Iterable[int]) -> dict[int, Claim]:
    """The claims of these tickets, in one query."""
    ids = list(ticket_ids)
    if not ids:
        return {}
    rows = db.session.scalars(_CLAIMS_OF, {"ids": ids})
    return {claim.ticket_id: claim for claim in rows}


def record_resolution(ticket: Ticket, data: Any, *, agent: Agent) -> Claim:
    """Record what was granted on a claimed ticket and resolve it (if not resolved yet).

    ``granted`` is required; ``amount`` for a refund or gift certificate, ``code`` for a
    gift certificate, ``reason`` when declined."""
    claim = claim_of(ticket)
    if claim is None:
        raise ValidationError({"claim": _("this ticket has no claim; add one first")})
    if not isinstance(data, dict):
        raise ValidationError({"granted": _("must be given")})
    errors: dict[str, str] = {}
    granted = data.get("granted")
    if granted not in GRANTS:
        errors["granted"] = _("must be one of: %(c)s", c=", ".join(GRANTS))
    amount = None
    try:
        amount = _optional_amount(data.get("amount"))
    except ValidationError as exc:
        errors["amount"] = next(iter(exc.errors.values()))
    if granted in ("refund", "gift_certificate") and amount is None and "amount" not in errors:
        errors["amount"] = _("is required for a refund or a gift certificate")
    if amount is not None and claim.currency is None and "amount" not in errors:
        errors["amount"] = _("needs the claim's currency; correct the claim first")
    texts = {}
    for field, limit in (("code", MAX_REFERENCE), ("reason", MAX_REASON)):
        try:
            texts[field] = _text(data.get(field), limit)
        except ValidationError as exc:
            errors[field] = next(iter(exc.errors.values()))
    if granted == "gift_certificate" and not texts.get("code") and "code" not in errors:
        errors["code"] = _("is required for a gift certificate")
    if granted == "declined" and not texts.get("reason") and "reason" not in errors:
        errors["reason"] = _("is required when a claim is declined")
    if errors:
        raise ValidationError(errors)
    claim.granted, claim.granted_amount = granted, amount
    claim.granted_code, claim.granted_reason = texts["code"], texts["reason"]
    claim.granted_by_id, claim.granted_at = agent.id, utcnow()
    if ticket.status in ("resolved", "closed"):
        db.session.commit()
    else:
        update_ticket(ticket, {"status": "resolved"}, actor=agent)
    return claim


def _money(value: Decimal | None, currency: str | None) -> str | None:
    if value is None:
        return None
    places = currency_places(currency) if currency else 2
    return str(value.quantize(Decimal(1).scaleb(-places)))


def claim_json(claim: Claim | None, agents: dict[int, Agent] | None = None) -> dict | None:
    """A claim as the API shows it (money as text), with its resolution once recorded."""
    if claim is None:
        return None
    data: dict[str, Any] = {
        "outcome_wanted": claim.outcome_wanted,
        "amount_claimed": _money(claim.amount_claimed, claim.currency),
        "currency": claim.currency,
        "incident_date": claim.incident_date.isoformat() if claim.incident_date else None,
        "order_reference": claim.order_reference or None,
        "costs": claim.cost_list,
        "resolution": None,
    }
    if claim.granted:
        by = (agents or {}).get(claim.granted_by_id) if claim.granted_by_id else None
        data["resolution"] = {
            "granted": claim.granted,
            "amount": _money(claim.granted_amount, claim.currency),
            "code": claim.granted_code or None,
            "reason": claim.granted_reason or None,
            "by": {"id": by.id, "name": by.name} if by else None,
            "at": claim.granted_at.strftime("%Y-%m-%dT%H:%M:%SZ") if claim.granted_at else None,
        }
    return data


def agents_by_id(ids: Iterable[int | None]) -> dict[int, Agent]:
    """Agents by id, in one query."""
    wanted = {i for i in ids if i}
    if not wanted:
        return {}
    return {a.id: a for a in db.session.scalars(select(Agent).where(Agent.id.in_(wanted)))}


# --- the template library -----------------------------------------------------------------


def variables() -> dict[str, dict[str, str]]:
    """Every variable a template may use: the plugin's and those other plugins declare."""
    found = {name: dict(fields) for name, fields in VARIABLES.items()}
    for answer in call_each("helpdesk_letter_variables"):
        if isinstance(answer, dict):
            for name, fields in answer.items():
                if isinstance(name, str) and isinstance(fields, dict) and name not in found:
                    found[name] = {str(k): str(v) for k, v in fields.items()}
    return found


def list_templates(query: str = "") -> list[LetterTemplate]:
    """The templates by name and language; ``query`` keeps those whose name, subject or
    body contains it (any case)."""
    rows = list(
        db.session.scalars(
            select(LetterTemplate).order_by(LetterTemplate.name, LetterTemplate.language)
        )
    )
    needle = query.strip().casefold()
    if needle:
        rows = [
            t
            for t in rows
            if any(needle in text.casefold() for text in (t.name, t.subject, t.body))
        ]
    return rows


# Built once: the ticket's claim (none: NULL) beside each template's picker columns (no
# template: one row of NULLs), by name and language; the texts are not read.
_CLAIM_AND_CHOICES = (
    select(
        Claim,
        LetterTemplate.id,
        LetterTemplate.name,
        LetterTemplate.language,
        LetterTemplate.outcome,
    )
    .select_from(Ticket)
    .outerjoin(Claim, Claim.ticket_id == Ticket.id)
    .outerjoin(LetterTemplate, true())
    .where(Ticket.id == bindparam("ticket_id"))
    .order_by(LetterTemplate.name, LetterTemplate.language)
)


def claim_and_choices(ticket: Ticket) -> tuple[Claim | None, list[Row]]:
    """The ticket's claim (as ``claim_of``) and each template's ``id``, ``name``,
    ``language`` and ``outcome`` (for a picker), by name and language: one query."""
    rows = db.session.execute(_CLAIM_AND_CHOICES, {"ticket_id": ticket.id}).all()
    claim = rows[0].Claim if rows else None
    return claim, [row for row in rows if row.id is not None]


def get_template(template_id: Any) -> LetterTemplate | None:
    """The template with this id, or ``None`` (for any bad id)."""
    if isinstance(template_id, str) and template_id.isdigit() and len(template_id) < 10:
        template_id = int(template_id)
    if not isinstance(template_id, int) or isinstance(template_id, bool):
        return None
    if not 0 < template_id < 2**31:
        return None
    return db.session.get(LetterTemplate, template_id)


def suggested(templates: list[Any], claim: Claim | None) -> list[Any]:
    """The templates (or their ``claim_and_choices`` rows) in the order an agent would want
    them for this claim: those answering what was granted (or asked for) first."""
    wanted = ""
    if claim is not None:
        wanted = claim.granted or claim.outcome_wanted
    return sorted(templates, key=lambda t: (t.outcome != wanted, t.name.casefold()))


def _clean_template(data: dict[str, Any], current: LetterTemplate | None) -> dict[str, Any]:
    names = {name: set(fields) for name, fields in variables().items()}
    problems: list[dict[str, Any]] = []
    clean: dict[str, Any] = {}
    name = data.get("name", current.name if current else None)
    if not isinstance(name, str) or not name.strip() or len(name.strip()) > MAX_NAME:
        problems.append(
            {
                "field": "name",
                "line": None,
                "message": _("is required (at most %(n)s characters)", n=MAX_NAME),
            }
        )
    else:
        clean["name"] = name.strip()
    language = data.get("language", current.language if current else "en")
    if (
        not isinstance(language, str)
        or not 2 <= len(language) <= 16
        or not set(language) <= LANGUAGE_CHARS
    ):
        problems.append(
            {
                "field": "language",
                "line": None,
                "message": _("must be a language code such as en or he"),
            }
        )
    else:
        clean["language"] = language
    outcome = data.get("outcome", current.outcome if current else "")
    if outcome not in ("", *GRANTS):
        problems.append(
            {
                "field": "outcome",
                "line": None,
                "message": _("must be empty or one of: %(c)s", c=", ".join(GRANTS)),
            }
        )
    else:
        clean["outcome"] = outcome
    for part in ("subject", "body"):
        source = data.get(part, getattr(current, part) if current else None)
        found = render.check(source, part, names)
        problems.extend(found)
        if not found:
            clean[part] = source
    if problems:
        raise render.TemplateRefused(problems)
    return clean


def _key_for(name: str) -> str:
    key = "".join(ch if ch.isalnum() else "_" for ch in name.casefold())[:50].strip("_")
    return key or "letter"


def create_template(data: Any, *, agent: Agent | None) -> LetterTemplate:
    """A new template (version 1). A ``key`` names the letter whose language variant it is."""
    if not isinstance(data, dict):
        raise render.TemplateRefused(
            [{"field": "", "line": None, "message": _("must be an object")}]
        )
    clean = _clean_template(data, None)
    key = data.get("key") if isinstance(data.get("key"), str) and data.get("key") else None
    key = _key_for(key or clean["name"])
    if db.session.scalar(
        select(LetterTemplate.id).where(
            LetterTemplate.key == key, LetterTemplate.language == clean["language"]
        )
    ):
        raise Conflict(
            _("A template %(key)s in %(lang)s exists already.", key=key, lang=clean["language"])
        )
    template = LetterTemplate(key=key, version=0, **clean)
    db.session.add(template)
    db.session.flush()
    _new_version(template, agent)
    db.session.commit()
    return template


def update_template(
    template: LetterTemplate, data: Any, *, agent: Agent | None, expected_version: Any = None
) -> LetterTemplate:
    """Save a new version of ``template``. ``expected_version`` is the version the editor
    started from: if someone saved since, ``Conflict`` and nothing is saved (so two editors
    never lose each other's version)."""
    if not isinstance(data, dict):
        raise render.TemplateRefused(
            [{"field": "", "line": None, "message": _("must be an object")}]
        )
    if expected_version not in (None, "") and str(expected_version) != str(template.version):
        raise Conflict(
            _(
                "Someone saved version %(v)s of this template while you were editing. Nothing "
                "was saved: compare your text with theirs, then save again.",
                v=template.version,
            )
        )
    clean = _clean_template(data, template)
    for field, value in clean.items():
        setattr(template, field, value)
    _new_version(template, agent)
    db.session.commit()
    return template


def _new_version(template: LetterTemplate, agent: Agent | None) -> None:
    template.version = (template.version or 0) + 1
    template.updated_at = utcnow()
    template.updated_by_id = agent.id if agent else None
    db.session.add(
        LetterTemplateVersion(
            template_id=template.id,
            version=template.version,
            name=template.name,
            subject=template.subject,
            body=template.body,
            agent_id=template.updated_by_id,
            created_at=template.updated_at,
        )
    )


def versions(template: LetterTemplate) -> list[LetterTemplateVersion]:
    """Every saved version, newest first."""
    return list(
        db.session.scalars(
            select(LetterTemplateVersion)
            .where(LetterTemplateVersion.template_id == template.id)
            .order_by(LetterTemplateVersion.version.desc())
        )
    )


def version_of(template: LetterTemplate, number: Any) -> LetterTemplateVersion | None:
    """Version ``number`` of the template, or ``None``."""
    if not (isinstance(number, str) and number.isdigit() and len(number) < 10):
        return None
    return db.session.scalar(
        select(LetterTemplateVersion).where(
            LetterTemplateVersion.template_id == template.id,
            LetterTemplateVersion.version == int(number),
        )
    )


def diff(old: LetterTemplateVersion, new: LetterTemplateVersion) -> str:
    """A unified diff of two versions' subject and body."""
    before = f"Subject: {old.subject}\n\n{old.body}".splitlines(keepends=True)
    after = f"Subject: {new.subject}\n\n{new.body}".splitlines(keepends=True)
    return "".join(
        difflib.unified_diff(before, after, f"version {old.version}", f"version {new.version}")
    )


def restore(template: LetterTemplate, old: LetterTemplateVersion, *, agent: Agent) -> None:
    """Save ``old``'s text as the newest version (history is never rewritten)."""
    update_template(
        template, {"name": old.name, "subject": old.subject, "body": old.body}, agent=agent
    )


def seed_templates() -> None:
    """Add the seeded templates that are missing (by key, in English)."""
    for seed in SEED_TEMPLATES:
        exists = db.session.scalar(
            select(LetterTemplate.id).where(
                LetterTemplate.key == seed["key"], LetterTemplate.language == "en"
            )
        )
        if not exists:
            template = LetterTemplate(language="en", version=0, **seed)
            db.session.add(template)
            db.session.flush()
            _new_version(template, None)
    db.session.commit()


# --- filling a template in ----------------------------------------------------------------


def _text_of(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, list):
        return [_text_of(v) for v in value]
    return value if isinstance(value, str) else str(value)


def ticket_context(ticket: Ticket, agent: Agent) -> dict[str, dict[str, Any]]:
    """The values of every variable for a letter on ``ticket`` written by ``agent``."""
    customer: Customer = ticket.customer
    claim = claim_of(ticket)
    order = _order_for(customer, claim)
    signature = agent.signature or f"{agent.name}\n{current_app.config['HELPDESK_NAME']}"
    context: dict[str, dict[str, Any]] = {
        "customer": {
            "name": customer.display_name,
            "since": customer.created_at.date().isoformat() if customer.created_at else "",
            "category": "",
        },
        "ticket": {"reference": ticket.reference, "subject": ticket.subject},
        "claim": _claim_values(claim),
        "order": {
            "reference": order.reference if order else "",
            "date": order.ordered_on.isoformat() if order else "",
            "amount": _money(order.amount, order.currency) if order else "",
            "currency": order.currency if order else "",
        },
        "agent": {"name": agent.name, "signature": signature},
    }
    for answer in call_each("helpdesk_letter_context", ticket=ticket):
        for name, values in (answer if isinstance(answer, dict) else {}).items():
            target = context.setdefault(str(name), {})
            for field, value in (values if isinstance(values, dict) else {}).items():
                if target.get(field) in (None, ""):  # a plugin fills in, never overrides
                    target[field] = value
    return _filled(context)


def _filled(context: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Every declared field present (empty when nobody gave it), every value text."""
    declared = variables()
    return {
        name: {
            field: _text_of(context.get(name, {}).get(field))
            for field in set(fields) | set(context.get(name, {}))
            if field in fields
        }
        for name, fields in declared.items()
    }


def _claim_values(claim: Claim | None) -> dict[str, Any]:
    if claim is None:
        return {}
    data = claim_json(claim) or {}
    resolution = data.get("resolution") or {}
    return {
        **{k: v for k, v in data.items() if k != "resolution"},
        "granted": resolution.get("granted"),
        "granted_amount": resolution.get("amount"),
        "code": resolution.get("code"),
        "reason": resolution.get("reason"),
    }


def _order_for(customer: Customer, claim: Claim | None) -> Order | None:
    query = select(Order).where(Order.customer_id == customer.id)
    if claim is not None and claim.order_reference:
        found = db.session.scalar(query.where(Order.reference == claim.order_reference).limit(1))
        if found is not None:
            return found
    return db.session.scalar(query.order_by(Order.ordered_on.desc(), Order.id.desc()).limit(1))


def sample_context() -> dict[str, dict[str, Any]]:
    """Made-up values for previewing a template in the editor."""
    sample = {
        "customer": {"name": "Ada Lovelace", "since": "2019-03-01", "category": "VIP"},
        "ticket": {"reference": "#1234", "subject": "Broken kettle"},
        "claim": {
            "outcome_wanted": "refund",
            "amount_claimed": "49.90",
            "currency": "EUR",
            "incident_date": "2026-11-02",
            "order_reference": "A-1001",
            "costs": ["money", "time"],
            "granted": "refund",
            "granted_amount": "49.90",
            "code": "GIFT-2026-XYZ",
            "reason": "the warranty ended in 2024",
        },
        "order": {
            "reference": "A-1001",
            "date": "2026-10-28",
            "amount": "49.90",
            "currency": "EUR",
        },
        "agent": {"name": "Grace Hopper", "signature": "Grace Hopper\nCustomer care"},
    }
    return _filled(sample)


def fill(template: LetterTemplate, context: dict[str, Any]) -> dict[str, str]:
    """The letter: ``subject`` (one line), ``text`` and ``html`` (paragraphs, escaped)."""
    subject = render.render(template.subject, context, html=False, field_name="subject")
    text = render.render(template.body, context, html=False)
    html = render.render(template.body, context, html=True)
    return {"subject": " ".join(subject.split()), "text": text, "html": as_paragraphs(html)}


def as_paragraphs(html: str) -> str:
    """Escaped HTML text as paragraphs (blank lines) with line breaks."""
    blocks = [block.strip() for block in html.replace("\r\n", "\n").split("\n\n")]
    return "".join(f"<p>{block.replace(chr(10), '<br>')}</p>" for block in blocks if block)
