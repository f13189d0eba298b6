"""predictions: each shop's fit (date, status, parameters) and each customer's predicted fields

Revision ID: 0008
Revises: 0003
Create Date: 2026-12-04
"""
import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "shop_predictions",
        sa.Column("shop_id", sa.String(64), primary_key=True),
        sa.Column("d_now", sa.String(10), nullable=False),
        sa.Column("computed_at", sa.BigInteger, nullable=False),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("customers", sa.Integer, nullable=False),
        *(sa.Column(name, sa.Float) for name in ("r", "alpha", "a", "b", "p", "q", "v")),
    )
    op.create_table(
        "customer_predictions",
        sa.Column("shop_id", sa.String(64), primary_key=True),
        sa.Column("customer_key", sa.String(320), primary_key=True),
        sa.Column("p_alive", sa.Float, nullable=False),
        sa.Column("churn_risk", sa.Float, nullable=False),
        sa.Column("churn_band", sa.String(8), nullable=False),
        sa.Column("expected_orders_90d", sa.Float, nullable=False),
        sa.Column("expected_orders_365d", sa.Float, nullable=False),
        sa.Column("predicted_clv_365d", sa.Float, nullable=False),
        sa.Column("next_order_date", sa.String(10)),
    )


def downgrade() -> None:
    op.drop_table("customer_predictions")
    op.drop_table("shop_predictions")
