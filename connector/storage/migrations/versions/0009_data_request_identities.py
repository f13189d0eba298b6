"""data_requests hold every request and the identities it names; deliveries pruned by age

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05

A privacy data request (Shopify `customers/data_request`) is recorded even when it names no email
or phone: `customer_key` may be NULL, and the request keeps what it asked for (email, phone, the
platform's customer id, the orders requested, JSON) so that the store owner can list and answer it
(`stagesync requests`). Delivery ids are pruned past the platforms' retry window: an index on
(shop_id, received_at) makes that a range delete.
"""
import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("data_requests") as batch:
        batch.alter_column("customer_key", existing_type=sa.String(320), nullable=True)
        batch.add_column(sa.Column("email", sa.String(320)))
        batch.add_column(sa.Column("phone", sa.String(32)))
        batch.add_column(sa.Column("customer_id", sa.String(128)))
        batch.add_column(sa.Column("orders_requested", sa.Text()))  # JSON array of order ids
    op.execute("UPDATE data_requests SET email = customer_key WHERE customer_key LIKE '%@%'")
    op.execute("UPDATE data_requests SET phone = customer_key WHERE customer_key NOT LIKE '%@%'")
    op.create_index("ix_data_requests_shop", "data_requests", ["shop_id", "received_at"])
    op.create_index("ix_deliveries_received", "deliveries", ["shop_id", "received_at"])


def downgrade() -> None:
    op.drop_index("ix_deliveries_received", table_name="deliveries")
    op.drop_index("ix_data_requests_shop", table_name="data_requests")
    op.execute("DELETE FROM data_requests WHERE customer_key IS NULL")
    with op.batch_alter_table("data_requests") as batch:
        batch.drop_column("orders_requested")
        batch.drop_column("customer_id")
        batch.drop_column("phone")
        batch.drop_column("email")
        batch.alter_column("customer_key", existing_type=sa.String(320), nullable=False)
