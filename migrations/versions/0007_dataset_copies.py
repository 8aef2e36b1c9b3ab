"""a dataset row per copy on disk: datasets are unique by fingerprint and root

Revision ID: 0007
Revises: 0006
"""
from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('datasets', schema=None) as batch_op:
        batch_op.drop_constraint('uq_datasets_fingerprint', type_='unique')
        batch_op.create_unique_constraint('uq_datasets_fingerprint_root', ['fingerprint', 'root'])


def downgrade() -> None:
    copies = op.get_bind().execute(sa.text(
        'SELECT fingerprint FROM datasets GROUP BY fingerprint HAVING COUNT(*) > 1')).first()
    if copies is not None:
        raise RuntimeError(f'Dataset {copies[0]} is recorded at several roots; revision 0006 '
                           'holds one row per dataset. Delete the rows of the copies first.')
    with op.batch_alter_table('datasets', schema=None) as batch_op:
        batch_op.drop_constraint('uq_datasets_fingerprint_root', type_='unique')
        batch_op.create_unique_constraint('uq_datasets_fingerprint', ['fingerprint'])
