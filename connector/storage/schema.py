"""The database schema (SQLAlchemy Core), the same on SQLite and PostgreSQL.

Instants are stored as integer microseconds since the Unix epoch (UTC) and amounts as integer
millionths of the shop's currency ("micros"). Both engines then compare, sum and subtract them
exactly and fast: the 365-day window and the day counts of docs/rules.md are to the microsecond,
and no float ever touches money. `connector.storage.store` converts at the boundary.

The schema is versioned by Alembic (`connector/storage/migrations`); a change here needs a new revision.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger, Boolean, Column, Float, Index, Integer, MetaData, String, Table, Text, UniqueConstraint,
)

metadata = MetaData()

orders = Table(
    "orders", metadata,
    Column("shop_id", String(64), primary_key=True),
    Column("order_id", String(128), primary_key=True),
    Column("customer_key", String(320)),  # normalised email, else E.164 phone, else NULL
    Column("email", String(320)),
    # The address as the shop spelled it when that is not its normalised form (NULL otherwise): what
    # destinations get, from the customer's latest order (connector/storage/spellings.py).
    Column("email_spelling", String(320)),
    Column("phone", String(32)),
    Column("customer_id", String(128)),  # the platform's own customer id, informational
    Column("placed_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger),
    Column("total", BigInteger, nullable=False),
    Column("refunded", BigInteger, nullable=False),  # max(order's own figure, sum of recorded refunds)
    Column("status", String(16), nullable=False),
    Column("test", Boolean, nullable=False),
    Column("currency", String(3)),
    # Derived from the columns above by connector.domain.orders.Order (is_valid, amount), kept so that
    # stage aggregation is one indexed scan with no business logic in SQL.
    Column("valid", Boolean, nullable=False),
    Column("amount", BigInteger, nullable=False),
    # False: an order in another currency that no rate converted (counted, `amount` 0: out of money figures)
    Column("amount_known", Boolean, nullable=False, server_default="1"),
)
# Covers the per-customer aggregation (connector.storage.store._figures_query): read from the index alone.
Index("ix_orders_figures", orders.c.shop_id, orders.c.customer_key, orders.c.placed_at, orders.c.valid,
      orders.c.amount)

refunds = Table(
    "refunds", metadata,
    Column("shop_id", String(64), primary_key=True),
    Column("order_id", String(128), primary_key=True),
    Column("refund_id", String(128), primary_key=True),
    Column("amount", BigInteger, nullable=False),
    Column("created_at", BigInteger),
)

customers = Table(
    "customers", metadata,
    Column("shop_id", String(64), primary_key=True),
    Column("customer_key", String(320), primary_key=True),
    Column("rfm", String(32), nullable=False),
    Column("rfm_since", String(10), nullable=False),  # YYYY-MM-DD
    Column("phases", String(32), nullable=False),
    Column("phases_since", String(10), nullable=False),
    Column("orders_365d", Integer, nullable=False),
    Column("orders_total", Integer, nullable=False),
    Column("amount_365d", BigInteger, nullable=False),
    Column("total_spent", BigInteger, nullable=False),
    Column("first_order_at", BigInteger),
    Column("last_order_at", BigInteger),
    # window orders with a known amount (the AOV's divisor; orders_365d counts them all)
    Column("known_orders_365d", Integer, nullable=False, server_default="0"),
    Column("evaluated_at", BigInteger, nullable=False),
)

stage_changes = Table(
    "stage_changes", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("shop_id", String(64), nullable=False),
    Column("customer_key", String(320), nullable=False),
    Column("model", String(16), nullable=False),
    Column("from_stage", String(32)),
    Column("to_stage", String(32), nullable=False),
    Column("at", BigInteger, nullable=False),
)
Index("ix_stage_changes_customer", stage_changes.c.shop_id, stage_changes.c.customer_key, stage_changes.c.id)
Index("ix_stage_changes_at", stage_changes.c.shop_id, stage_changes.c.at)

shop_figures = Table(
    "shop_figures", metadata,
    Column("shop_id", String(64), primary_key=True),
    Column("window_amount", BigInteger, nullable=False),
    Column("window_orders", Integer, nullable=False),
    Column("window_known_orders", Integer, nullable=False, server_default="0"),  # shop AOV's divisor
    Column("recent_days", Integer, nullable=False),
    Column("nurture_days", Integer, nullable=False),
    Column("risk_days", Integer, nullable=False),
    Column("adaptive", Boolean, nullable=False),
    Column("computed_at", BigInteger, nullable=False),
)

deliveries = Table(
    "deliveries", metadata,
    Column("shop_id", String(64), primary_key=True),
    Column("delivery_id", String(128), primary_key=True),
    Column("topic", String(64), nullable=False),
    Column("received_at", BigInteger, nullable=False),
)
Index("ix_deliveries_received", deliveries.c.shop_id, deliveries.c.received_at)  # pruned by age

# Every privacy data request received, with the identities it names (any may be NULL): the store
# owner lists them and exports the customer's data (`stagesync requests`).
data_requests = Table(
    "data_requests", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("shop_id", String(64), nullable=False),
    Column("customer_key", String(320)),  # normalised email, else E.164 phone, else NULL
    Column("request_id", String(128)),  # the platform's id of the request
    Column("received_at", BigInteger, nullable=False),
    Column("email", String(320)),
    Column("phone", String(32)),
    Column("customer_id", String(128)),  # the platform's customer id
    Column("orders_requested", Text),  # JSON array of order ids
)
Index("ix_data_requests_shop", data_requests.c.shop_id, data_requests.c.received_at)

# One row per (shop, destination, customer) whose contact must be brought up to date: a dirty
# flag, so later changes coalesce with earlier unsent ones. What is sent is computed when sent.
outbox = Table(
    "outbox", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("shop_id", String(64), nullable=False),
    Column("destination", String(64), nullable=False),
    Column("customer_key", String(320), nullable=False),
    Column("state", String(8), nullable=False),  # pending | dead
    Column("due_at", BigInteger, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("claimed_by", String(64)),
    Column("claimed_until", BigInteger),
    Column("last_status", Integer),
    Column("last_error", Text),
    Column("queued_at", BigInteger, nullable=False),
    # Bumped by every enqueue: a worker deletes the item after sending only if nobody re-queued it.
    Column("generation", Integer, nullable=False, server_default="0"),
    UniqueConstraint("shop_id", "destination", "customer_key", name="uq_outbox_item"),
)
Index("ix_outbox_due", outbox.c.state, outbox.c.due_at)

# What each destination has acknowledged per contact: never send an equal property set again,
# and the last stage change already sent as an event.
synced = Table(
    "synced", metadata,
    Column("shop_id", String(64), primary_key=True),
    Column("destination", String(64), primary_key=True),
    Column("customer_key", String(320), primary_key=True),
    Column("properties", Text, nullable=False),  # canonical JSON
    Column("last_change_id", BigInteger, nullable=False),
    Column("synced_at", BigInteger, nullable=False),
)

# Each destination's last failed request (connector.services.sync): the vendor's status and message
# (emails and keys masked) and when; shown by the dashboard and `deadletters` next to the last success.
destination_errors = Table(
    "destination_errors", metadata,
    Column("shop_id", String(64), primary_key=True),
    Column("destination", String(64), primary_key=True),
    Column("status", Integer),
    Column("error", Text, nullable=False),
    Column("at", BigInteger, nullable=False),
)

# Cross-process rate limiting: requests to one destination account are spaced at least
# 60 / rate_per_minute seconds apart by reserving the next free slot atomically.
rate_slots = Table(
    "rate_slots", metadata,
    Column("key", String(160), primary_key=True),
    Column("next_free_at", BigInteger, nullable=False),
)

# Where each shop's platform API reading stands: `backfill` holds the checkpoint of a running or
# finished backfill (JSON, see connector.services.backfill), `poll` the instant the last poll started.
sync_cursors = Table(
    "sync_cursors", metadata,
    Column("shop_id", String(64), primary_key=True),
    Column("kind", String(16), primary_key=True),  # backfill | poll
    Column("cursor", Text),
    Column("updated_at", BigInteger, nullable=False),
)

# The `predicted` model's fit of each shop, from its last recompute (connector.services.predicting):
# the day it was fitted at (d_now), its status and reason, and the BG/NBD and Gamma-Gamma parameters
# (NULL unless the status is `ok`).
shop_predictions = Table(
    "shop_predictions", metadata,
    Column("shop_id", String(64), primary_key=True),
    Column("d_now", String(10), nullable=False),  # YYYY-MM-DD
    Column("computed_at", BigInteger, nullable=False),
    Column("status", String(24), nullable=False),  # ok | insufficient_data
    Column("reason", Text),
    Column("customers", Integer, nullable=False),
    *(Column(name, Float) for name in ("r", "alpha", "a", "b", "p", "q", "v")),
)

# Each customer's predicted fields as a destination is sent them (p_alive, churn_risk, the expected
# orders and the CLV rounded to 2 decimals), from the shop's last fit; no row: every field null.
customer_predictions = Table(
    "customer_predictions", metadata,
    Column("shop_id", String(64), primary_key=True),
    Column("customer_key", String(320), primary_key=True),
    Column("p_alive", Float, nullable=False),
    Column("churn_risk", Float, nullable=False),
    Column("churn_band", String(8), nullable=False),
    Column("expected_orders_90d", Float, nullable=False),
    Column("expected_orders_365d", Float, nullable=False),
    Column("predicted_clv_365d", Float, nullable=False),
    Column("next_order_date", String(10)),  # YYYY-MM-DD, NULL beyond 365 days
)

# An opaque, stable reference to each customer (a random token, never derived from the email or
# phone): what URLs carry instead of the address (docs/http.md, 'Customers'). Made on first need.
customer_refs = Table(
    "customer_refs", metadata,
    Column("shop_id", String(64), primary_key=True),
    Column("customer_key", String(320), primary_key=True),
    Column("ref", String(32), nullable=False),
    UniqueConstraint("shop_id", "ref", name="uq_customer_refs_ref"),
)

# Dashboard sign-ins that have not ended: the session cookie names one by a random id, stored here
# only as its SHA-256, so a cookie replayed after logout (or after it expired) is refused.
dashboard_sessions = Table(
    "dashboard_sessions", metadata,
    Column("id", String(64), primary_key=True),
    Column("expires_at", BigInteger, nullable=False),
)

# Failed dashboard logins, per client, for the limits every process shares (docs/http.md, 'Dashboard').
login_failures = Table(
    "login_failures", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("client", String(64), nullable=False),
    Column("at", BigInteger, nullable=False),
)
Index("ix_login_failures_at", login_failures.c.at)
Index("ix_login_failures_client", login_failures.c.client, login_failures.c.at)

# Intake health (connector.services.intake_health). Webhook deliveries refused before anything was
# stored, counted per shop (or the one bucket "(unknown)" for an unknown shop id), reason from a
# fixed set and minute (start, micros): never the body. Rows older than two days are pruned.
webhook_rejections = Table(
    "webhook_rejections", metadata,
    Column("shop_id", String(64), primary_key=True),
    Column("reason", String(16), primary_key=True),
    Column("minute", BigInteger, primary_key=True),
    Column("count", Integer, nullable=False),
)

# The first and the last verified delivery of each shop and topic (a topic outside the platform's
# fixed list is "other"); `last_at` is written at most once a minute per topic.
webhook_topics = Table(
    "webhook_topics", metadata,
    Column("shop_id", String(64), primary_key=True),
    Column("topic", String(64), primary_key=True),
    Column("first_at", BigInteger, nullable=False),
    Column("last_at", BigInteger, nullable=False),
)

# Orders that `poll` or `backfill` stored first, before any webhook brought them (an order absent
# here arrived by webhook, by `import`, or before this table existed). Only orders placed in the
# week before they arrived are noted, and rows older than a week are pruned.
order_arrivals = Table(
    "order_arrivals", metadata,
    Column("shop_id", String(64), primary_key=True),
    Column("order_id", String(128), primary_key=True),
    Column("via", String(8), nullable=False),  # poll | backfill
    Column("arrived_at", BigInteger, nullable=False),
    Column("placed_at", BigInteger, nullable=False),
)
