"""team lead: who answers for a team

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 22:20:00.000000

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('teams', schema=None) as batch_op:
        batch_op.add_column(sa.Column('lead_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f('fk_teams_lead_id_agents'), 'agents', ['lead_id'], ['id'], ondelete='SET NULL'
        )


def downgrade():
    with op.batch_alter_table('teams', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_teams_lead_id_agents'), type_='foreignkey')
        batch_op.drop_column('lead_id')
