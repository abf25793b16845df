"""Rendering a plugin's page panel: what ``render_template`` gives it, for less (public API:
``helpdesk.render_panel``).

A panel is rendered while the page's own template is, once per page view, so its cost is the
plugin's overhead on the page. Two things make ``render_template`` cost more than the panel's
own markup: the app's context processors, which add what only the page uses (``request``,
``current_user``, the page language; the panel templates use none of it, and ``url_for``,
``csrf_token`` and ``_`` are globals of the Jinja environment), and the i18n extension's
``_()``, which looks the request's translations up again at every call. Here the template is
rendered in the page's Jinja environment with the translations looked up once.
"""

from __future__ import annotations

from typing import Any

from flask import current_app
from flask_babel import get_translations
from jinja2 import pass_context
from jinja2.runtime import Context
from markupsafe import Markup


def render_panel(template_name: str, **values: Any) -> Markup:
    """The panel template ``template_name`` rendered with ``values``, as HTML."""
    translations = get_translations()

    @pass_context
    def gettext(context: Context, message: str, **variables: Any) -> str:
        # As the i18n extension's "newstyle" gettext: escaped variables, always formatted.
        text = translations.ugettext(message)
        if context.eval_ctx.autoescape:
            text = Markup(text)
        return text % variables

    template = current_app.jinja_env.get_template(template_name)
    # ``_`` too: the extension's ``_`` would only look ``gettext`` up and call it.
    return Markup(template.render(values, gettext=gettext, _=gettext))
