"""mail: Message-IDs, HTML bodies and automated flags on messages, bounced addresses,
ticket participants (CCs), the mail quarantine

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 18:31:15.097658

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('mail_quarantine',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('received_at', sa.DateTime(), nullable=False),
    sa.Column('reason', sa.String(length=64), nullable=False),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.Column('message_id', sa.String(length=255), nullable=True),
    sa.Column('sender', sa.String(length=254), nullable=False),
    sa.Column('subject', sa.String(length=200), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('storage_key', sa.String(length=80), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('processed_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_mail_quarantine')),
    sa.UniqueConstraint('storage_key', name=op.f('uq_mail_quarantine_storage_key'))
    )
    with op.batch_alter_table('mail_quarantine', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_mail_quarantine_message_id'), ['message_id'], unique=False)
        batch_op.create_index('ix_mail_quarantine_status_received', ['status', 'received_at'], unique=False)

    op.create_table('ticket_participants',
    sa.Column('ticket_id', sa.Integer(), nullable=False),
    sa.Column('email_key', sa.String(length=254), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], name=op.f('fk_ticket_participants_ticket_id_tickets'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('ticket_id', 'email_key', name=op.f('pk_ticket_participants'))
    )
    with op.batch_alter_table('ticket_participants', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ticket_participants_email_key'), ['email_key'], unique=False)

    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('email_bounced_at', sa.DateTime(), nullable=True))

    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('message_id', sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column('body_html', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('automated', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.create_index(batch_op.f('ix_messages_message_id'), ['message_id'], unique=True)



def downgrade():
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_messages_message_id'))
        batch_op.drop_column('automated')
        batch_op.drop_column('body_html')
        batch_op.drop_column('message_id')

    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.drop_column('email_bounced_at')

    with op.batch_alter_table('ticket_participants', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ticket_participants_email_key'))

    op.drop_table('ticket_participants')
    with op.batch_alter_table('mail_quarantine', schema=None) as batch_op:
        batch_op.drop_index('ix_mail_quarantine_status_received')
        batch_op.drop_index(batch_op.f('ix_mail_quarantine_message_id'))

    op.drop_table('mail_quarantine')
