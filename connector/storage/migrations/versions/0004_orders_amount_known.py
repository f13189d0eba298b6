"""orders.amount_known: orders in another currency that no rate converted

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04

An order in another currency than the shop's, with no rate from the platform nor in the shop's
`rates`, counts as an order but its amount stays out of every money figure (docs/rules.md,
'Amounts and currencies'): it is stored with amount 0 and amount_known false.
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


def downgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("amount_known")
