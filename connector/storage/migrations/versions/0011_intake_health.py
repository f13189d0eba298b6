"""intake health: rejected webhook deliveries, the last accepted delivery per topic, orders first
brought by poll or backfill; each destination's last error

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05
"""
import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "webhook_rejections",
        sa.Column("shop_id", sa.String(64), primary_key=True),
        sa.Column("reason", sa.String(16), primary_key=True),
        sa.Column("minute", sa.BigInteger, primary_key=True),
        sa.Column("count", sa.Integer, nullable=False),
    )
    op.create_table(
        "webhook_topics",
        sa.Column("shop_id", sa.String(64), primary_key=True),
        sa.Column("topic", sa.String(64), primary_key=True),
        sa.Column("first_at", sa.BigInteger, nullable=False),
        sa.Column("last_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "order_arrivals",
        sa.Column("shop_id", sa.String(64), primary_key=True),
        sa.Column("order_id", sa.String(128), primary_key=True),
        sa.Column("via", sa.String(8), nullable=False),
        sa.Column("arrived_at", sa.BigInteger, nullable=False),
        sa.Column("placed_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "destination_errors",
        sa.Column("shop_id", sa.String(64), primary_key=True),
        sa.Column("destination", sa.String(64), primary_key=True),
        sa.Column("status", sa.Integer),
        sa.Column("error", sa.Text, nullable=False),
        sa.Column("at", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("destination_errors")
    op.drop_table("order_arrivals")
    op.drop_table("webhook_topics")
    op.drop_table("webhook_rejections")
