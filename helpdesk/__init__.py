"""helpdesk: a small help-desk core whose business features are plugins.

This module is the public API. Plugins import from here and nowhere else in ``helpdesk``.
"""

from __future__ import annotations

import pluggy

from helpdesk.app import create_app

hookimpl = pluggy.HookimplMarker("helpdesk")

__all__ = ["create_app", "hookimpl"]
