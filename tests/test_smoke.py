from helpdesk.core import services
from helpdesk.core.models import Ticket
from helpdesk.extensions import db


def test_open_ticket_and_search(app):
    ticket = services.open_ticket(
        subject="Broken lamp",
        body="The lamp arrived broken",
        customer_email="Gudrun@Example.is",
        customer_name="Guðrún",
    )
    assert db.session.get(Ticket, ticket.id).customer.email_key == "gudrun@example.is"
    assert services.status_counts()["new"] == 1
