"""(being written)"""

from flask import Blueprint

bp = Blueprint("admin", __name__)


@bp.route("/admin/agents")
def agents():
    return "agents"
