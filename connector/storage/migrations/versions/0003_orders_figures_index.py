"""orders: a covering index for the per-customer aggregation

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23

The recompute aggregates every customer's orders with (shop_id, customer_key) groups over
placed_at, valid and amount; with all five columns in the index, both engines read the index alone.
"""
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_orders_figures", "orders", ["shop_id", "customer_key", "placed_at", "valid", "amount"])
    op.drop_index("ix_orders_customer", table_name="orders")


def downgrade() -> None:
    op.create_index("ix_orders_customer", "orders", ["shop_id", "customer_key", "placed_at"])
    op.drop_index("ix_orders_figures", table_name="orders")
