"""(being written)"""

from flask import Blueprint

bp = Blueprint("customers", __name__)


@bp.route("/customers")
def index():
    return "customers"
