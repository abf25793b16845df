"""E-mail in and out: parsing, threading and loop guards; composing and the outbox."""
