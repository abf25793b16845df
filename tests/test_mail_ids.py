"""Signed Message-IDs: ours thread to their ticket; forged ones do not."""

from helpdesk.core.mail.ids import make_message_id, ticket_id_from_message_id


def test_round_trip_and_stability(app):
    first = make_message_id(1234, "abc")
    assert first == make_message_id(1234, "abc")  # a retried send keeps its Message-ID
    assert first.startswith("<hd.1234.abc.") and first.endswith("@localhost>")
    assert ticket_id_from_message_id(f"<other@x.y> {first}") == 1234
    assert make_message_id(1) != make_message_id(1)


def test_forged_or_foreign_ids_name_no_ticket(app):
    genuine = make_message_id(42, "k")
    forged = genuine.replace("hd.42.", "hd.43.")
    assert ticket_id_from_message_id(forged) is None
    assert ticket_id_from_message_id("<hd.42.k.000000000000000000000000@localhost>") is None
    assert ticket_id_from_message_id("<CAF=abc@mail.gmail.com>") is None
    assert ticket_id_from_message_id("") is None
    app.config["SECRET_KEY"] = "rotated"
    assert ticket_id_from_message_id(genuine) is None
