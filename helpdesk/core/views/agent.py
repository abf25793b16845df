"""(being written)"""

from flask import Blueprint

bp = Blueprint("agent", __name__)


@bp.route("/tickets")
def queue():
    return "queue"


@bp.route("/tickets/new")
def new_ticket():
    return "new"
