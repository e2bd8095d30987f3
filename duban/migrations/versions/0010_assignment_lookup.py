"""assignments: find a unit's assignment on an order by (order, unit), not by all of the unit's assignments

Without statistics SQLite chose (unit_id, active) for "this unit's active assignment on this order",
reading every open assignment of the unit: a cost that grew with the unit's workload on every page
and every action. An index leading with the order and the unit is the one both databases pick.

Revision ID: 0010_assignment_lookup
Revises: 0009_account_unit
"""

from alembic import op

revision = "0010_assignment_lookup"
down_revision = "0009_account_unit"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("assignments") as batch:
        batch.drop_index("ix_assignments_order_active")
        batch.create_index("ix_assignments_order_unit_active", ["work_order_id", "unit_id", "active"])


def downgrade() -> None:
    with op.batch_alter_table("assignments") as batch:
        batch.drop_index("ix_assignments_order_unit_active")
        batch.create_index("ix_assignments_order_active", ["work_order_id", "active"])
