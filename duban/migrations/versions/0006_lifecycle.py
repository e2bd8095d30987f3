"""lifecycle runs: the run cursor per order

Revision ID: 0006_lifecycle
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

import models.base

revision = "0006_lifecycle"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "run_cursors",
        sa.Column("work_order_id", sa.Integer(), nullable=False),
        sa.Column("flow_run_id", sa.String(length=36), nullable=True),
        sa.Column("started_at", models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("narrated_event_id", sa.Integer(), nullable=False),
        sa.Column("applied_inputs", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["work_order_id"], ["work_orders.id"],
                                name=op.f("fk_run_cursors_work_order_id_work_orders")),
        sa.PrimaryKeyConstraint("work_order_id", name=op.f("pk_run_cursors")),
    )
    with op.batch_alter_table("run_cursors") as batch_op:
        batch_op.create_index(batch_op.f("ix_run_cursors_flow_run_id"), ["flow_run_id"], unique=False)
    with op.batch_alter_table("work_orders") as batch_op:
        batch_op.drop_column("flow_run_id")


def downgrade() -> None:
    with op.batch_alter_table("work_orders") as batch_op:
        batch_op.add_column(sa.Column("flow_run_id", sa.String(length=36), nullable=True))
    op.drop_index(op.f("ix_run_cursors_flow_run_id"), table_name="run_cursors")
    op.drop_table("run_cursors")
