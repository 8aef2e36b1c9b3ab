"""where each attribute's classes lie along its vector (adaptive edits)

Revision ID: 0005
Revises: 0004
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('vectors', schema=None) as batch_op:
        batch_op.add_column(sa.Column('positive_projection', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('negative_projection', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('spread', sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('vectors', schema=None) as batch_op:
        batch_op.drop_column('spread')
        batch_op.drop_column('negative_projection')
        batch_op.drop_column('positive_projection')
