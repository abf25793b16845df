"""Client categories: an agent who takes a category's new tickets.

Revision ID: categories_0002
Revises: categories_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "categories_0002"
down_revision = "categories_0001"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("categories", schema=None) as batch_op:
        batch_op.add_column(sa.Column("assignee_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_categories_assignee_id_agents"),
            "agents",
            ["assignee_id"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade():
    with op.batch_alter_table("categories", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_categories_assignee_id_agents"), type_="foreignkey")
        batch_op.drop_column("assignee_id")
