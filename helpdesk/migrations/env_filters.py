"""What Alembic's autogenerate should not look at (shared by env.py and the tests)."""

# Tables made by raw SQL in migrations (full-text search), which the models do not describe.
UNMODELLED_TABLE_PREFIXES = ("ticket_fts", "ticket_search")


def include_name(name: str | None, type_: str, parent_names: dict) -> bool:
    """Keep autogenerate from proposing to drop the search tables."""
    return not (type_ == "table" and (name or "").startswith(UNMODELLED_TABLE_PREFIXES))
