"""orders.amount_known: orders in another currency that no rate converted; the AOV divisors

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04

An order in another currency than the shop's, with no rate from the platform nor in the shop's
`rates`, counts as an order but its amount stays out of every money figure (docs/rules.md,
'Amounts and currencies'): it is stored with amount 0 and amount_known false. The AOVs divide by
the window orders with a known amount: customers.known_orders_365d and
shop_figures.window_known_orders (every order stored before this revision has a known amount).
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("amount_known", sa.Boolean(), nullable=False, server_default="1"))
    with op.batch_alter_table("customers") as batch:
        batch.add_column(sa.Column("known_orders_365d", sa.Integer(), nullable=False, server_default="0"))
    op.execute("UPDATE customers SET known_orders_365d = orders_365d")
    with op.batch_alter_table("shop_figures") as batch:
        batch.add_column(sa.Column("window_known_orders", sa.Integer(), nullable=False, server_default="0"))
    op.execute("UPDATE shop_figures SET window_known_orders = window_orders")


def downgrade() -> None:
    with op.batch_alter_table("shop_figures") as batch:
        batch.drop_column("window_known_orders")
    with op.batch_alter_table("customers") as batch:
        batch.drop_column("known_orders_365d")
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("amount_known")
