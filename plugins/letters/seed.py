"""The letter templates the plugin starts with, in English. Each follows the guide for an
answer to a complaint: acknowledge, restate, say what will be done and when, offer the
remedy, thank. Other languages are variants: the same ``key`` with another ``language``."""

from __future__ import annotations

SIGN_OFF = "\n\nKind regards,\n{{ agent.signature }}"

SEED_TEMPLATES: list[dict[str, str]] = [
    {
        "key": "acknowledgement",
        "name": "Acknowledgement",
        "outcome": "",
        "subject": "We have received your complaint {{ ticket.reference }}",
        "body": (
            "Dear {{ customer.name }},\n\n"
            "Thank you for writing to us{% if customer.since %}, and for being our client since "
            "{{ customer.since }}{% endif %}. We have received your complaint about "
            '"{{ ticket.subject }}" (reference {{ ticket.reference }}).\n\n'
            "{% if claim.incident_date %}You tell us that on {{ claim.incident_date }} things "
            "did not go as they should{% if claim.order_reference %} with your order "
            "{{ claim.order_reference }}{% endif %}. {% endif %}"
            "We are looking into it now and will tell you within two working days what we "
            "will do.\n\nThank you for taking the time to tell us: it helps us do better."
            + SIGN_OFF
        ),
    },
    {
        "key": "apology_refund",
        "name": "Apology with refund",
        "outcome": "refund",
        "subject": "Your refund for {{ ticket.reference }}",
        "body": (
            "Dear {{ customer.name }},\n\n"
            "Thank you for telling us what happened, and please accept our apologies. "
            "{% if claim.order_reference %}Your order {{ claim.order_reference }} {% else %}"
            "What you bought {% endif %}did not meet the standard you can expect from us"
            "{% if claim.incident_date %} on {{ claim.incident_date }}{% endif %}.\n\n"
            "We are refunding {{ claim.granted_amount or claim.amount_claimed }} "
            "{{ claim.currency }}. The money will be back on your account within five working "
            "days.\n\nThank you for your patience{% if customer.since %} and for staying with us "
            "since {{ customer.since }}{% endif %}. We hope to serve you better next time."
            + SIGN_OFF
        ),
    },
    {
        "key": "replacement",
        "name": "Replacement",
        "outcome": "replacement",
        "subject": "A replacement for you ({{ ticket.reference }})",
        "body": (
            "Dear {{ customer.name }},\n\n"
            "Thank you for letting us know, and we are sorry for the trouble. You told us that "
            "{% if claim.order_reference %}your order {{ claim.order_reference }}{% else %}"
            "what you bought from us{% endif %} was not right.\n\n"
            "We are sending you a replacement: it will be on its way within two working days, "
            "at no cost to you. You do not need to return the faulty item unless we ask.\n\n"
            "Thank you for giving us the chance to put this right." + SIGN_OFF
        ),
    },
    {
        "key": "gift_certificate",
        "name": "Gift certificate",
        "outcome": "gift_certificate",
        "subject": "A gift certificate with our apologies ({{ ticket.reference }})",
        "body": (
            "Dear {{ customer.name }},\n\n"
            "Thank you for writing to us, and please accept our apologies for what happened"
            "{% if claim.incident_date %} on {{ claim.incident_date }}{% endif %}.\n\n"
            "To make up for it, here is a gift certificate worth "
            "{{ claim.granted_amount or claim.amount_claimed }} {{ claim.currency }}. "
            "Its code is {{ claim.code }}; you can use it from today, in our shop or online.\n\n"
            "Thank you for staying with us. We look forward to serving you again." + SIGN_OFF
        ),
    },
    {
        "key": "cannot_grant",
        "name": "Cannot grant, with reasons and an alternative",
        "outcome": "declined",
        "subject": "About your request {{ ticket.reference }}",
        "body": (
            "Dear {{ customer.name }},\n\n"
            'Thank you for writing to us about "{{ ticket.subject }}". We have looked into it '
            "carefully.\n\n"
            "We are sorry that we cannot grant what you asked for: {{ claim.reason }}\n\n"
            "What we can offer instead: [write the alternative here].\n\n"
            "If you see it differently, reply to this letter and we will look at it again. "
            "Thank you for your understanding." + SIGN_OFF
        ),
    },
    {
        "key": "resolved_thanks",
        "name": "Resolved, with thanks",
        "outcome": "apology",
        "subject": "Your request {{ ticket.reference }} is resolved",
        "body": (
            "Dear {{ customer.name }},\n\n"
            'We are glad to tell you that your request "{{ ticket.subject }}" is resolved, '
            "and we apologise again for the trouble it caused you.\n\n"
            "Thank you for telling us and for your patience: your letter helps us do better. "
            "If anything is still not right, just reply to this letter." + SIGN_OFF
        ),
    },
]
