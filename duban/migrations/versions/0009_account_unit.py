"""accounts: the unit a supervisor also acts for

Revision ID: 0009_account_unit
Revises: 0008_accounts
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_account_unit"
down_revision = "0008_accounts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("users", sa.Column("unit_code", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("unit_code")
