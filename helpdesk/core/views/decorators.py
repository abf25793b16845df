"""View decorators shared by the core's pages and plugins' pages."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from flask import abort
from flask_login import current_user, login_required


def admin_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Let only logged-in admins in: others are sent to log in, agents get 403."""

    @functools.wraps(view)
    @login_required
    def admins_only(*args: Any, **kwargs: Any) -> Any:
        if not current_user.is_admin:
            abort(403)
        return view(*args, **kwargs)

    return admins_only
