"""datasets and shard sets

Revision ID: 0001
Revises: 
"""
from alembic import op
import sqlalchemy as sa


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('datasets',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('root', sa.String(length=1024), nullable=False),
    sa.Column('layout', sa.String(length=16), nullable=False),
    sa.Column('fingerprint', sa.String(length=64), nullable=False),
    sa.Column('images', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_datasets')),
    sa.UniqueConstraint('fingerprint', name=op.f('uq_datasets_fingerprint'))
    )

    op.create_table('shard_sets',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('dataset_id', sa.Integer(), nullable=False),
    sa.Column('path', sa.String(length=1024), nullable=False),
    sa.Column('sizes', sa.JSON(), nullable=False),
    sa.Column('crop', sa.String(length=32), nullable=False),
    sa.Column('shard_size', sa.Integer(), nullable=False),
    sa.Column('shards', sa.Integer(), nullable=False),
    sa.Column('images', sa.Integer(), nullable=False),
    sa.Column('excluded', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['dataset_id'], ['datasets.id'], name=op.f('fk_shard_sets_dataset_id_datasets')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_shard_sets')),
    sa.UniqueConstraint('path', name=op.f('uq_shard_sets_path'))
    )
    with op.batch_alter_table('shard_sets', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_shard_sets_dataset_id'), ['dataset_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('shard_sets', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_shard_sets_dataset_id'))

    op.drop_table('shard_sets')

    op.drop_table('datasets')
