"""A received mail's HTML as the agent's ticket page shows it.

The HTML was sanitised when the mail arrived (``parse.sanitise_html``); it is cleaned again
here, at display time, with a stricter allow-list, so markup stored by an older version or
written to the database by other means cannot run either. Kept: text structure (paragraphs,
lists, tables, quotes, emphasis) and links to web or mail addresses (opened without referrer).
Dropped: scripts and styles with their content, every ``style``/``class``/``id``/event
attribute (so no CSS ``url()`` and nothing escapes its container), forms, frames, and images'
sources: a remote image would tell the sender the mail was read (the page's CSP,
``default-src 'self'``, would refuse to load it anyway); its ``alt`` text stays.
"""

from __future__ import annotations

import nh3
from markupsafe import Markup

TAGS = frozenset(
    {
        "a", "abbr", "b", "blockquote", "br", "caption", "cite", "code", "dd", "del", "div",
        "dl", "dt", "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "ins", "kbd",
        "li", "ol", "p", "pre", "q", "s", "small", "span", "strong", "sub", "sup", "table",
        "tbody", "td", "tfoot", "th", "thead", "tr", "u", "ul",
    }
)  # fmt: skip
ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"alt", "width", "height"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan", "scope"},
    "ol": {"start"},
}
URL_SCHEMES = frozenset({"http", "https", "mailto"})


def display_html(markup: str | None) -> Markup:
    """``markup`` (a received mail's stored HTML) cleaned for the ticket page."""
    cleaned = nh3.clean(
        markup or "",
        tags=set(TAGS),
        clean_content_tags={"script", "style"},
        attributes={tag: set(names) for tag, names in ATTRIBUTES.items()},
        url_schemes=set(URL_SCHEMES),
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )
    return Markup(cleaned)  # nh3's output under the allow-list above
