"""Every hook a plugin may implement. Each docstring says when it runs, what it gets, and what
it returns. Events run after the change is committed; a plugin that raises is logged and skipped.
"""

from __future__ import annotations

from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("helpdesk")


@hookspec
def helpdesk_customer_registered(customer: Any) -> None:
    """Event, after commit: a customer record was created (by the form, the API, mail or an agent).

    ``customer`` is the ``Customer``. The return value is ignored.

    For work that is cheaper in bulk, implement ``helpdesk_customers_registered`` instead (not
    both: a plugin implementing both hears every customer twice).
    """


@hookspec
def helpdesk_customers_registered(customers: Any) -> None:
    """Event, after commit: the customers created by one transaction (one from the form, the
    API or an agent; many from a batch of received mail or an import).

    ``customers`` is a list of ``Customer``, in the order they were created; it fires once per
    commit, after that commit's ``helpdesk_customer_registered`` events. Implement this one or
    ``helpdesk_customer_registered``, not both: a plugin that gives each new customer rows of
    its own (a category, a bonus card) writes them for all of them in a few statements here.
    The customers were committed, so their attributes are expired: read what you need of all
    of them in one query by their ids (``sqlalchemy.inspect(customer).identity`` gives an id
    without a query). The return value is ignored.
    """


@hookspec
def helpdesk_ticket_defaults(customer: Any, ticket_data: dict[str, Any]) -> dict[str, Any] | None:
    """Decision, before a ticket is created: values to use where the caller gave none.

    ``ticket_data`` holds what is known so far (``subject``, ``kind``, ``priority``,
    ``due_at``, ``team_id``, ``assignee_id``). Return a dict with any of ``priority`` (one of
    low, normal, high, urgent), ``due_at`` (an aware ``datetime``), ``team_id`` and
    ``assignee_id`` (an agent's id), or ``None``. Results are merged: the highest priority and
    the earliest due date win; the first ``team_id`` and the first ``assignee_id`` win. A
    priority given explicitly by the caller is never lowered; a team or assignee the caller
    chose is kept; a proposed agent who is no longer active is ignored.
    """


@hookspec
def helpdesk_ticket_defaults_many(
    requests: list[dict[str, Any]],
) -> list[dict[str, Any] | None] | None:
    """Decision, the bulk form of ``helpdesk_ticket_defaults`` for tickets opened together
    (``helpdesk mail fetch`` opens a run of them in a few statements).

    ``requests`` holds one ``{"customer": ..., "ticket_data": ...}`` per ticket; return one
    proposal (or ``None``) per request, in order, just as ``helpdesk_ticket_defaults`` would
    answer each. Implement it alongside that hook, to answer with one query instead of one per
    ticket. A plugin that does not implement it, raises, or returns something else is asked
    ``helpdesk_ticket_defaults`` for each ticket instead.
    """


@hookspec
def helpdesk_ticket_created(ticket: Any) -> None:
    """Event, after commit: a ticket was opened, with its first message. Return value ignored."""


@hookspec
def helpdesk_message_added(ticket: Any, message: Any) -> None:
    """Event, after commit: a reply or internal note (``message.internal``) joined ``ticket``.

    Not fired for a ticket's first message (that is ``helpdesk_ticket_created``).
    """


@hookspec
def helpdesk_ticket_status_changed(ticket: Any, old: str, new: str) -> None:
    """Event, after commit: ``ticket.status`` went from ``old`` to ``new``. Return value ignored."""


@hookspec
def helpdesk_ticket_status_changing(ticket: Any, old: str, new: str, actor: Any) -> None:
    """Decision, inside the transaction that changes ``ticket.status`` from ``old`` to ``new``
    (the new status is set, nothing is committed yet): add the plugin's rows that must go with
    the change, e.g. an outbox item with ``helpdesk.enqueue``, so they are saved (or rolled
    back) with it. ``actor`` is who changed it: an ``Agent``, a ``Customer`` (their reply
    reopened it) or ``None`` (the system).

    It runs on every status change: keep it to no or few queries, add rows to ``db.session``
    only once nothing can fail any more, and never commit. An exception is logged and the
    change goes on without the plugin. The return value is ignored.
    """


@hookspec
def helpdesk_order_recorded(order: Any) -> None:
    """Event, after commit: a customer's order was recorded (customer page, API or import).

    ``order`` is the ``Order``: ``customer_id``, ``ordered_on`` (a ``date``), ``amount`` (a
    ``Decimal`` in ``currency``, an ISO 4217 code), ``channel``, ``source``, ``reference``.
    Not fired for a duplicate (an order whose source and reference were already recorded) nor
    by a dry run. The return value is ignored.

    For work that is cheaper in bulk, implement ``helpdesk_orders_recorded`` instead (not
    both: a plugin implementing both hears every order twice).
    """


@hookspec
def helpdesk_orders_recorded(orders: Any) -> None:
    """Event, after commit: the orders recorded by one transaction (one order entered on a
    page or through the API; a batch of ``ORDERS_IMPORT_BATCH_SIZE`` rows of an import).

    ``orders`` is a list of ``Order`` (as for ``helpdesk_order_recorded``), in the order they
    were recorded; it fires once per commit, after that commit's ``helpdesk_order_recorded``
    events. Same rules: never for a duplicate nor by a dry run. Implement this one or
    ``helpdesk_order_recorded``, not both: a plugin that works per order implements the
    latter; one that does its work in a few statements for many orders (loyalty's accrual)
    implements this one. The orders were committed, so their attributes are expired: touching
    each one reloads it in a query of its own; read what you need of all of them in one query
    by their ids (``sqlalchemy.inspect(order).identity`` gives an id without a query). The
    return value is ignored.
    """


@hookspec
def helpdesk_order_refunded(order: Any, refund: Any) -> None:
    """Event, after commit: money was given back on a recorded order (``POST
    /api/v1/orders/<id>/refunds``), in full or in part.

    ``order`` is the ``Order``; ``refund`` the ``OrderRefund``: ``id``, ``order_id``, ``amount``
    (a ``Decimal`` in the order's currency, more than 0), ``reason``, ``created_at``. Refunds of
    one order together never pass its amount; several partial refunds fire one event each.
    The return value is ignored.
    """


@hookspec
def helpdesk_customer_lost(customer: Any, as_of: Any) -> None:
    """Event, after commit: ``helpdesk retention review`` found that ``customer`` (a
    ``Customer``) became a lost client at the reference date ``as_of`` (a ``date``). Fired once
    per change of status: a review run again on the same data fires nothing. The return value
    is ignored."""


@hookspec
def helpdesk_customer_drying_up(customer: Any, as_of: Any) -> None:
    """Event, after commit: the retention review found ``customer`` drying up at ``as_of``
    (average order value fallen, or a product line no longer bought). Fired once per change of
    status. The return value is ignored."""


@hookspec
def helpdesk_customer_won_back(customer: Any, as_of: Any) -> None:
    """Event, after commit: the retention review found a win-back order of ``customer``
    (bought again after having counted as lost) in the year up to ``as_of``; e.g. loyalty may
    answer with a bonus. Fired once per win-back order. The return value is ignored."""


@hookspec
def helpdesk_outbox_senders() -> dict[str, Any] | None:
    """Decision, each worker round: deliverers for outbox channels besides ``"mail"``.

    Return ``{channel: deliver}``. The worker claims due items of those channels (queued with
    ``helpdesk.enqueue``) and calls ``deliver(delivery)`` for each, outside any transaction:
    ``delivery`` has ``id``, ``channel``, ``payload``, ``attempts`` (tries before this one),
    ``last_try`` and ``ticket_id``. Returning means sent. Raise ``helpdesk.DeliveryRefused`` for
    a permanent refusal (the item is dead at once), ``helpdesk.ChannelUnavailable`` when the
    service is away (the rest of the channel's batch waits too); any other exception is a
    temporary failure of this item, retried with backoff until ``OUTBOX_MAX_ATTEMPTS``. Items of
    a channel nobody delivers (its plugin disabled) stay pending. The first deliverer for a
    channel wins.
    """


@hookspec
def helpdesk_sms_backends() -> dict[str, Any] | None:
    """Decision, merged: SMS gateways by name, for the plugins that send SMS (surveys picks one
    with ``SURVEYS_SMS_BACKEND``). The first backend of a name wins.

    Return ``{name: make}``. ``make(config)`` gets the app's config and returns
    ``send(sms) -> str``: ``sms`` is a dict with ``to`` (E.164), ``body`` and
    ``status_callback`` (a URL for delivery reports, or ``None``); it returns the gateway's id
    for the message. It is called by the worker, outside any transaction. Raise
    ``helpdesk.DeliveryRefused(message)`` for a permanent refusal (set its ``code`` attribute
    to the gateway's error code), ``helpdesk.ChannelUnavailable`` when the gateway is away
    (time-out, 429, 5xx): the SMS is retried with backoff.
    """


# --- start-up: called once per app instance, for every installed plugin ------------------------
# A disabled plugin's blueprints and commands are still registered (so enabling it needs no
# restart) but answer 404 / are hidden while it is disabled.


@hookspec
def helpdesk_config_defaults() -> dict[str, Any] | None:
    """Start-up, merged: the plugin's settings with their defaults, e.g. ``{"HELLO_GREETING":
    "Hello"}``.

    Applied under the deployer's configuration: a key already set by the core defaults, the
    instance file, the ``HELPDESK_*`` environment or ``create_app(config)`` keeps its value.
    Prefix keys with the plugin's name. Read them from ``current_app.config``.
    """


@hookspec
def helpdesk_blueprints() -> list[Any] | None:
    """Start-up, merged: Flask ``Blueprint`` objects holding the plugin's pages.

    A blueprint's ``template_folder`` and ``static_folder`` are how a plugin ships templates
    (put them under ``templates/<plugin name>/``) and files. While the plugin is disabled every
    URL of its blueprints answers 404.
    """


@hookspec
def helpdesk_cli_commands() -> list[Any] | None:
    """Start-up, merged: ``click`` commands (or groups) added to the ``helpdesk`` command.

    They run in an app context. While the plugin is disabled they are not listed and cannot
    be run. A name the core or another plugin already uses is refused (logged).
    """


@hookspec
def helpdesk_migration_dirs() -> list[str] | None:
    """Start-up, merged: paths of the plugin's Alembic version directories.

    Each directory's revisions form one branch whose ``branch_labels`` is the plugin's name;
    the first revision has ``down_revision = None`` and ``depends_on`` the core revision that
    made the core tables it references (e.g. ``"0001"``). A plugin creates only its own tables
    and never alters core tables. ``helpdesk init-db`` upgrades the core and every enabled
    plugin; ``helpdesk plugins enable NAME`` upgrades that plugin.
    """


# --- pages: called while a page is rendered, only for enabled plugins ----------------------


@hookspec
def helpdesk_nav_items(agent: Any) -> list[dict[str, Any]] | None:
    """Page, merged: links for the top bar of the logged-in ``agent`` (an ``Agent``).

    Return a list of dicts: ``label`` (text), ``endpoint`` (a Flask endpoint) or ``url``, and
    ``admin_only`` (bool, default false: hidden from agents who are not admins). With
    ``search`` (a query argument's name, e.g. ``"number"``) the item is a search box in the top
    bar instead of a link: typing and Enter (a barcode scanner does both) opens the page with
    ``?<search>=<what was typed>``.
    """


@hookspec
def helpdesk_ticket_panels(ticket: Any) -> dict[str, Any] | list[dict[str, Any]] | None:
    """Page, merged: panels in the side column of the agents' ticket page.

    ``ticket`` is the ``Ticket`` shown. Return a panel ``{"title": text, "html": Markup}`` (or
    a list of them); render ``html`` from the plugin's own template with ``render_template`` and
    wrap it in ``markupsafe.Markup`` (a plain ``str`` is escaped). One call per page: keep it to
    a fixed number of queries. ``"place": "top"`` puts a panel under the ticket's title, above
    the conversation (a short summary, e.g. a complaint's claim); the default is the side column.
    """


@hookspec
def helpdesk_customer_panels(customer: Any) -> dict[str, Any] | list[dict[str, Any]] | None:
    """Page, merged: panels on the customer page, as ``helpdesk_ticket_panels`` (``customer``
    is the ``Customer`` shown)."""


@hookspec
def helpdesk_reports() -> list[dict[str, Any]] | None:
    """Page, merged: report pages listed on ``/reports``.

    Return a list of dicts: ``title``, ``endpoint`` (of a page of the plugin's blueprint) or
    ``url``, and an optional ``description``. The pages themselves are the plugin's.
    """


@hookspec
def helpdesk_queue_filters() -> list[dict[str, Any]] | None:
    """Queue, merged: extra filters of the ticket queue (the page and ``GET /api/v1/tickets``).

    Return a list of dicts: ``name`` (the query argument; not one the core uses), ``label``,
    ``choices`` (a list of ``(value, label)`` pairs, or a function returning one: it runs once
    per page) and ``apply``, a function ``apply(query, value) -> query`` that narrows the
    SQLAlchemy ``select(Ticket)`` for a chosen ``value`` (always one of the choices' values).
    """


@hookspec
def helpdesk_queue_badges(tickets: list[Any]) -> dict[int, list[dict[str, str]]] | None:
    """Queue, merged: badges beside tickets, one call for the whole page shown.

    ``tickets`` is the list of ``Ticket`` rows on the page. Return ``{ticket_id: [badge, ...]}``
    where a badge is ``{"label": text, "title": text (optional), "tone": a CSS-safe word
    (optional; the class ``tone-<word>``)}``. Load what you need for all tickets in one query.
    """


# --- the REST API: one call per response, for all rows in it -----------------------------


@hookspec
def helpdesk_ticket_json(tickets: list[Any]) -> dict[int, dict[str, Any]] | None:
    """API, merged: extra fields for the tickets of one API response (a page or one ticket).

    ``tickets`` is the list of ``Ticket`` rows. Return ``{ticket_id: {field: value}}``; values
    must be JSON-serialisable (``Decimal`` becomes a string). Fields the core or an earlier
    plugin set are never replaced; prefix your fields with the plugin's name.
    """


@hookspec
def helpdesk_customer_json(customers: list[Any]) -> dict[int, dict[str, Any]] | None:
    """API, merged: extra fields for the customers of one API response, as
    ``helpdesk_ticket_json`` (``customers`` is the list of ``Customer`` rows)."""


# --- reports -----------------------------------------------------------------------------


@hookspec
def helpdesk_customer_groupings() -> dict[str, Any] | list[dict[str, Any]] | None:
    """Reports, collected: a way to group customers that any plugin's report may break its
    figures down by (the categories plugin offers "client category"). Asked by
    ``helpdesk.customer_groupings()`` when a report page is drawn.

    Return ``{"key": a word, "label": text, "query": an SQLAlchemy select of two columns,
    customer id then group name, one row per grouped customer, "otherwise": the group name of
    customers the query leaves out}`` (or a list of them). The first plugin to give a key wins.
    """


# --- decisions ---------------------------------------------------------------------------


@hookspec
def helpdesk_price_policy(customer: Any, amount: Any) -> dict[str, Any] | None:
    """Decision, merged: the plugin's offer for selling ``amount`` (a ``Decimal``) to
    ``customer``.

    Return ``{"discount_percent": Decimal (0-100), "prepayment_required": bool, "reason":
    text}`` or ``None``. ``helpdesk.price_policy`` combines the offers by the setting
    ``PRICE_POLICY_COMBINE``: ``best`` takes the largest discount, ``stack`` applies every
    discount in turn; prepayment is required when any offer requires it. An offer outside
    0-100 % is logged and ignored.
    """


@hookspec
def helpdesk_openapi() -> dict[str, Any] | None:
    """API, merged: the plugin's part of the OpenAPI document served at
    ``/api/v1/openapi.json``, for the routes its blueprints add under ``/api/v1``.

    Return ``{"paths": {path: path item}, "schemas": {name: schema}}`` (paths relative to
    ``/api/v1``). Each ``operationId`` is the route's full endpoint (``"<blueprint>.<view>"``).
    A path or schema name the core or an earlier plugin documents is never replaced.
    """


# --- input and forms that plugins add (letters: the structured claim of a complaint) ---------


@hookspec
def helpdesk_ticket_input(ticket: Any, data: dict[str, Any]) -> None:
    """Decision, inside ``open_ticket``'s transaction: store the plugin's part of a new
    ticket's input.

    Runs after the ticket and its first message are flushed (``ticket.id`` is set) and before
    the commit, only when the caller passed ``extra`` (``POST /api/v1/tickets`` passes its
    whole JSON body; a plugin's own form passes what it gathered). ``data`` is that dict: read
    only your keys (e.g. ``data.get("claim")``) and add your rows to ``db.session``; do not
    commit. Raise ``helpdesk.ValidationError({field: message})`` to refuse the input: the
    ticket is rolled back and the caller gets the errors (the API answers 422). Every enabled
    plugin is called; any other exception is logged and the ticket is opened without that
    plugin's part. The return value is ignored.
    """


@hookspec
def helpdesk_portal_forms() -> dict[str, str] | None:
    """Page, merged: public forms that take the place of the portal's form for a kind of
    request, e.g. ``{"complaint": "letters.complaint"}`` (kind → endpoint of a page that
    needs no login).

    The portal's form then links to that page for that kind instead of offering it as a
    choice, and ``/?kind=<kind>`` redirects there. The first endpoint for a kind wins.
    """


@hookspec
def helpdesk_letter_variables() -> dict[str, dict[str, str]] | None:
    """Decision, merged: variables a plugin adds to reply-letter templates, declared so a
    template using them can be checked on save: ``{namespace: {field: description}}``, e.g.
    ``{"loyalty": {"balance": "bonus points balance"}}`` lets a template use
    ``{{ loyalty.balance }}``. A namespace the letters plugin or an earlier plugin declares is
    not replaced. The values come from ``helpdesk_letter_context``.
    """


@hookspec
def helpdesk_letter_context(ticket: Any) -> dict[str, dict[str, Any]] | None:
    """Decision, merged: the values of the plugin's letter variables for ``ticket`` (a
    ``Ticket``), as declared by ``helpdesk_letter_variables``: ``{namespace: {field: value}}``.
    Values are shown as text (escaped in the HTML part); a declared field left out renders
    empty. Called once per letter rendered for a ticket: keep it to a fixed number of queries.
    """
