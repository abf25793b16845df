"""(being written)"""

from flask import Blueprint

bp = Blueprint("portal", __name__)


@bp.route("/")
def new_request():
    return "form"
