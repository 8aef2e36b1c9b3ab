"""attribute vector sets and vectors

Revision ID: 0003
Revises: 0002
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('vector_sets',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('checkpoint', sa.String(length=1024), nullable=False),
    sa.Column('shard_set_id', sa.Integer(), nullable=True),
    sa.Column('method', sa.String(length=32), nullable=False),
    sa.Column('keep', sa.JSON(), nullable=False),
    sa.Column('per_attribute', sa.Integer(), nullable=True),
    sa.Column('seed', sa.Integer(), nullable=True),
    sa.Column('split', sa.String(length=8), nullable=False),
    sa.Column('images', sa.Integer(), nullable=False),
    sa.Column('skipped', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], name=op.f('fk_vector_sets_run_id_runs')),
    sa.ForeignKeyConstraint(['shard_set_id'], ['shard_sets.id'], name=op.f('fk_vector_sets_shard_set_id_shard_sets')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_vector_sets'))
    )
    with op.batch_alter_table('vector_sets', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_vector_sets_run_id'), ['run_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_vector_sets_shard_set_id'), ['shard_set_id'], unique=False)

    op.create_table('vectors',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('vector_set_id', sa.Integer(), nullable=False),
    sa.Column('attribute', sa.String(length=32), nullable=False),
    sa.Column('positives', sa.Integer(), nullable=False),
    sa.Column('negatives', sa.Integer(), nullable=False),
    sa.Column('norm', sa.Float(), nullable=False),
    sa.Column('stderr', sa.Float(), nullable=False),
    sa.Column('values', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['vector_set_id'], ['vector_sets.id'], name=op.f('fk_vectors_vector_set_id_vector_sets')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_vectors')),
    sa.UniqueConstraint('vector_set_id', 'attribute', name=op.f('uq_vectors_vector_set_id'))
    )
    with op.batch_alter_table('vectors', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_vectors_vector_set_id'), ['vector_set_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('vectors', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_vectors_vector_set_id'))

    op.drop_table('vectors')

    with op.batch_alter_table('vector_sets', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_vector_sets_shard_set_id'))
        batch_op.drop_index(batch_op.f('ix_vector_sets_run_id'))

    op.drop_table('vector_sets')
