"""platform API cursors: backfill checkpoints and poll cursors

Revision ID: 0002
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'sync_cursors',
        sa.Column('shop_id', sa.String(length=64), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('cursor', sa.Text(), nullable=True),
        sa.Column('updated_at', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('shop_id', 'kind'),
    )


def downgrade() -> None:
    op.drop_table('sync_cursors')
