"""Demo data: a few agents in two teams, customers, and about 50 tickets in every state.

Everything goes through the services, so counters, history and search are as in real use.
"""

from __future__ import annotations

import random

from sqlalchemy import func, select

from helpdesk.core import services
from helpdesk.core.accounts import agent_by_email, create_agent, create_team
from helpdesk.core.customers import find_or_create_customer
from helpdesk.core.models import Team, Ticket
from helpdesk.extensions import db

DEMO_ADMIN = {"email": "admin@example.com", "password": "demo-password", "name": "Dana Admin"}
DEMO_AGENTS = [
    ("ana@example.com", "Ana Jónsdóttir", "Complaints"),
    ("yossi@example.com", "Yossi Cohen", "Support"),
    ("eleni@example.com", "Eleni Papadopoulou", "Support"),
]
DEMO_CUSTOMERS = [
    ("gudrun@example.is", "Guðrún Þórsdóttir", "+354 555 1234"),
    ("noa@example.co.il", "נועה לוי", "+972 50 234 5678"),
    ("nikos@example.gr", "Νίκος Παπαδάκης", "+30 691 234 5678"),
    ("maria@example.com", "Maria Garcia", None),
    ("john@example.com", "John Smith", "+1 202 555 0143"),
    ("li@example.com", "Li Wei", None),
    ("amara@example.com", "Amara Okafor", None),
    ("pierre@example.fr", "Pierre Dubois", "+33 6 12 34 56 78"),
    ("sofia@example.com", "Sofia Rossi", None),
    ("olafur@example.is", "Ólafur Ragnarsson", None),
    ("kim@example.com", "Kim Lee", None),
    ("priya@example.com", "Priya Sharma", None),
]
DEMO_SUBJECTS = [
    ("complaint", "Order arrived damaged", "The box was crushed and the lamp inside is broken."),
    ("complaint", "Charged twice for one order", "My card shows two charges for order 4471."),
    ("complaint", "Rude answer on the phone", "I called yesterday and was hung up on."),
    ("complaint", "Refund still not received", "You promised a refund three weeks ago."),
    ("complaint", "Wrong size delivered", "I ordered a medium and received a small."),
    ("support", "How do I change my delivery address?", "I am moving next week."),
    ("support", "Invoice for my company", "Could you send an invoice with our VAT number?"),
    ("support", "Password reset does not arrive", "I never get the reset e-mail."),
    ("support", "Is the blue kettle back in stock?", "I would like to buy two."),
    ("support", "Opening hours over the holidays", "Are you open on the 24th?"),
]
STATUS_PLAN = ["new"] * 10 + ["open"] * 12 + ["pending"] * 10 + ["resolved"] * 10 + ["closed"] * 8


def load_demo(*, only_if_empty: bool = False) -> int:
    """Load the demo set; returns how many tickets were made (0 when skipped)."""
    if only_if_empty and db.session.scalar(select(func.count(Ticket.id))):
        return 0
    rng = random.Random(1234)
    teams = {name: _team(name) for name in ("Complaints", "Support")}
    admin = agent_by_email(DEMO_ADMIN["email"]) or create_agent(
        email=DEMO_ADMIN["email"],
        name=DEMO_ADMIN["name"],
        password=DEMO_ADMIN["password"],
        role="admin",
        team_ids=[team.id for team in teams.values()],
    )
    agents = [admin]
    for email, name, team in DEMO_AGENTS:
        agents.append(
            agent_by_email(email)
            or create_agent(
                email=email, name=name, password=DEMO_ADMIN["password"], team_ids=[teams[team].id]
            )
        )
    customers = [find_or_create_customer(*row) for row in DEMO_CUSTOMERS]
    db.session.commit()

    for number, status in enumerate(STATUS_PLAN):
        kind, subject, body = DEMO_SUBJECTS[number % len(DEMO_SUBJECTS)]
        ticket = services.open_ticket(
            subject=subject,
            body=body,
            kind=kind,
            customer=customers[number % len(customers)],
            priority=rng.choice(["low", "normal", "normal", "high", "urgent"]),
            team=teams["Complaints" if kind == "complaint" else "Support"],
            source=rng.choice(["web", "email", "api"]),
        )
        if status == "new":
            continue
        agent = rng.choice(agents)
        services.update_ticket(ticket, {"assignee": agent}, actor=agent)
        services.add_message(
            ticket, body="Thank you for writing. We are looking into it.", author=agent
        )
        if number % 3 == 0:
            services.add_message(
                ticket, body="Checked the order history; see ERP note.", author=agent, internal=True
            )
        if status in ("pending", "resolved", "closed"):
            services.update_ticket(ticket, {"status": "pending"}, actor=agent)
        if status in ("resolved", "closed"):
            services.add_message(ticket, body="Thank you, that helped!", author=ticket.customer)
            services.add_message(
                ticket,
                body="Glad to hear it. Closing this now.",
                author=agent,
                new_status="resolved",
            )
        if status == "closed":
            services.update_ticket(ticket, {"status": "closed"}, actor=agent)
    return len(STATUS_PLAN)


def _team(name: str) -> Team:
    return db.session.scalar(select(Team).where(Team.name == name)) or create_team(name)
