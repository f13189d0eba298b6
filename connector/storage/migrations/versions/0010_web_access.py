"""web access: opaque customer refs, dashboard sessions, failed logins

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05
"""
import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "customer_refs",
        sa.Column("shop_id", sa.String(64), primary_key=True),
        sa.Column("customer_key", sa.String(320), primary_key=True),
        sa.Column("ref", sa.String(32), nullable=False),
        sa.UniqueConstraint("shop_id", "ref", name="uq_customer_refs_ref"),
    )
    op.create_table(
        "dashboard_sessions",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "login_failures",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("client", sa.String(64), nullable=False),
        sa.Column("at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_login_failures_at", "login_failures", ["at"])
    op.create_index("ix_login_failures_client", "login_failures", ["client", "at"])


def downgrade() -> None:
    op.drop_index("ix_login_failures_client", "login_failures")
    op.drop_index("ix_login_failures_at", "login_failures")
    op.drop_table("login_failures")
    op.drop_table("dashboard_sessions")
    op.drop_table("customer_refs")
