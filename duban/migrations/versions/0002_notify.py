"""notifications: recipients already delivered to, and when a notice became an incident

Revision ID: 0002_notify
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

import models.base

revision = "0002_notify"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Rows written before this revision get an empty list; the default is dropped afterwards like the model's.
    with op.batch_alter_table("notifications") as batch_op:
        batch_op.add_column(sa.Column("delivered_to", sa.JSON(), nullable=False, server_default=sa.text("'[]'")))
        batch_op.add_column(sa.Column("failed_at", models.base.UTCDateTime(timezone=True), nullable=True))
    with op.batch_alter_table("notifications") as batch_op:
        batch_op.alter_column("delivered_to", server_default=None, existing_type=sa.JSON(), existing_nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("notifications") as batch_op:
        batch_op.drop_column("failed_at")
        batch_op.drop_column("delivered_to")
