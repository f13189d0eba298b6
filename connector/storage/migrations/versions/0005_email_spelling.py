"""orders.email_spelling: the address as the shop spelled it

Revision ID: 0005
Revises: 0003
Create Date: 2026-12-04

Customers stay keyed by the normalised (lower-cased) address; destinations get the spelling of the
customer's latest order, because some treat the address as case-sensitive (Omnisend). NULL when the
shop's spelling is the normalised one, so existing rows need no backfill.
"""
from alembic import op
import sqlalchemy as sa

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("orders", sa.Column("email_spelling", sa.String(length=320), nullable=True))


def downgrade() -> None:
    op.drop_column("orders", "email_spelling")
