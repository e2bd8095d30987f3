"""supervision: fired rungs, flags against units, case decisions, the circulated notice, the clock's job store

Revision ID: 0003_supervision
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

import models.base

revision = "0003_supervision"
down_revision = "0001"
branch_labels = None
depends_on = None

_UTC = models.base.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "escalations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=160), nullable=False),
        sa.Column("work_order_id", sa.Integer(), nullable=False),
        sa.Column("assignment_id", sa.Integer(), nullable=True),
        sa.Column("unit_id", sa.Integer(), nullable=True),
        sa.Column("stage", sa.String(length=24), nullable=False),
        sa.Column("rung", sa.String(length=16), nullable=False),
        sa.Column("due_at", _UTC, nullable=False),
        sa.Column("scheduled_at", _UTC, nullable=False),
        sa.Column("fired_at", _UTC, nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["assignment_id"], ["assignments.id"],
                                name=op.f("fk_escalations_assignment_id_assignments")),
        sa.ForeignKeyConstraint(["case_id"], ["supervision_cases.id"],
                                name=op.f("fk_escalations_case_id_supervision_cases")),
        sa.ForeignKeyConstraint(["unit_id"], ["units.id"], name=op.f("fk_escalations_unit_id_units")),
        sa.ForeignKeyConstraint(["work_order_id"], ["work_orders.id"],
                                name=op.f("fk_escalations_work_order_id_work_orders")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_escalations")),
        sa.UniqueConstraint("key", name=op.f("uq_escalations_key")),
    )
    with op.batch_alter_table("escalations") as batch_op:
        batch_op.create_index("ix_escalations_unit_fired", ["unit_id", "fired_at"], unique=False)
        batch_op.create_index("ix_escalations_order", ["work_order_id", "id"], unique=False)

    op.create_table(
        "supervision_flags",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=120), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("work_order_id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=True),
        sa.Column("related_order_id", sa.Integer(), nullable=True),
        sa.Column("at", _UTC, nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["related_order_id"], ["work_orders.id"],
                                name=op.f("fk_supervision_flags_related_order_id_work_orders")),
        sa.ForeignKeyConstraint(["unit_id"], ["units.id"], name=op.f("fk_supervision_flags_unit_id_units")),
        sa.ForeignKeyConstraint(["work_order_id"], ["work_orders.id"],
                                name=op.f("fk_supervision_flags_work_order_id_work_orders")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_supervision_flags")),
        sa.UniqueConstraint("key", name=op.f("uq_supervision_flags_key")),
    )
    with op.batch_alter_table("supervision_flags") as batch_op:
        batch_op.create_index("ix_supervision_flags_unit_at", ["unit_id", "at"], unique=False)
        batch_op.create_index(batch_op.f("ix_supervision_flags_work_order_id"), ["work_order_id"], unique=False)

    op.create_table(
        "case_decisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("decision", sa.String(length=24), nullable=False),
        sa.Column("actor_kind", sa.String(length=16), nullable=False),
        sa.Column("actor_id", sa.String(length=100), nullable=False),
        sa.Column("at", _UTC, nullable=False),
        sa.Column("new_due_at", _UTC, nullable=True),
        sa.Column("unit_id", sa.Integer(), nullable=True),
        sa.Column("finding", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["supervision_cases.id"],
                                name=op.f("fk_case_decisions_case_id_supervision_cases")),
        sa.ForeignKeyConstraint(["unit_id"], ["units.id"], name=op.f("fk_case_decisions_unit_id_units")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_decisions")),
    )
    with op.batch_alter_table("case_decisions") as batch_op:
        batch_op.create_index(batch_op.f("ix_case_decisions_case_id"), ["case_id"], unique=False)

    op.create_table(
        "circulated_notices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("period", sa.String(length=32), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("drawn_at", _UTC, nullable=False),
        sa.Column("buck_passing_index", sa.Float(), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["unit_id"], ["units.id"], name=op.f("fk_circulated_notices_unit_id_units")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_circulated_notices")),
        sa.UniqueConstraint("period", "unit_id", name="uq_circulated_notices_period_unit"),
    )

    op.create_table(
        "clock_jobs",
        sa.Column("id", sa.Unicode(length=191), nullable=False),
        sa.Column("next_run_time", sa.Float(precision=25), nullable=True),
        sa.Column("job_state", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_clock_jobs")),
    )
    with op.batch_alter_table("clock_jobs") as batch_op:
        batch_op.create_index(batch_op.f("ix_clock_jobs_next_run_time"), ["next_run_time"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("clock_jobs") as batch_op:
        batch_op.drop_index(batch_op.f("ix_clock_jobs_next_run_time"))
    op.drop_table("clock_jobs")
    op.drop_table("circulated_notices")
    with op.batch_alter_table("case_decisions") as batch_op:
        batch_op.drop_index(batch_op.f("ix_case_decisions_case_id"))
    op.drop_table("case_decisions")
    with op.batch_alter_table("supervision_flags") as batch_op:
        batch_op.drop_index(batch_op.f("ix_supervision_flags_work_order_id"))
        batch_op.drop_index("ix_supervision_flags_unit_at")
    op.drop_table("supervision_flags")
    with op.batch_alter_table("escalations") as batch_op:
        batch_op.drop_index("ix_escalations_order")
        batch_op.drop_index("ix_escalations_unit_fired")
    op.drop_table("escalations")
