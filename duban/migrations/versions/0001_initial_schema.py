"""initial schema

Revision ID: 0001
Revises: 
"""

from alembic import op
import sqlalchemy as sa
import models.base


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('categories',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=128), nullable=False),
    sa.Column('name_zh', sa.String(length=100), nullable=False),
    sa.Column('name_en', sa.String(length=200), nullable=False),
    sa.Column('parent_id', sa.Integer(), nullable=True),
    sa.Column('keywords', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['parent_id'], ['categories.id'], name=op.f('fk_categories_parent_id_categories')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_categories')),
    sa.UniqueConstraint('code', name=op.f('uq_categories_code'))
    )
    with op.batch_alter_table('categories', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_categories_parent_id'), ['parent_id'], unique=False)

    op.create_table('channel_keys',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('channel', sa.String(length=24), nullable=False),
    sa.Column('key_hash', sa.String(length=128), nullable=False),
    sa.Column('created_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', models.base.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_channel_keys')),
    sa.UniqueConstraint('key_hash', name=op.f('uq_channel_keys_key_hash')),
    sa.UniqueConstraint('name', name=op.f('uq_channel_keys_name'))
    )
    op.create_table('districts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('name_zh', sa.String(length=100), nullable=False),
    sa.Column('name_en', sa.String(length=100), nullable=False),
    sa.Column('parent_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['parent_id'], ['districts.id'], name=op.f('fk_districts_parent_id_districts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_districts')),
    sa.UniqueConstraint('code', name=op.f('uq_districts_code'))
    )
    with op.batch_alter_table('districts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_districts_parent_id'), ['parent_id'], unique=False)

    op.create_table('order_counters',
    sa.Column('prefix', sa.String(length=16), nullable=False),
    sa.Column('last', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('prefix', name=op.f('pk_order_counters'))
    )
    op.create_table('policy_versions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('content', sa.Text(), nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=100), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('in_flight', sa.String(length=16), nullable=False),
    sa.Column('current', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_policy_versions')),
    sa.UniqueConstraint('number', name=op.f('uq_policy_versions_number'))
    )
    op.create_table('units',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('name_zh', sa.String(length=100), nullable=False),
    sa.Column('name_en', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=18), nullable=False),
    sa.Column('parent_id', sa.Integer(), nullable=True),
    sa.Column('district_id', sa.Integer(), nullable=True),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('leader_name', sa.String(length=100), nullable=False),
    sa.Column('leader_email', sa.String(length=254), nullable=False),
    sa.Column('leader_phone', sa.String(length=40), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.CheckConstraint("kind IN ('bureau', 'district', 'county', 'enterprise', 'platform')", name=op.f('ck_units_kind_valid')),
    sa.ForeignKeyConstraint(['district_id'], ['districts.id'], name=op.f('fk_units_district_id_districts')),
    sa.ForeignKeyConstraint(['parent_id'], ['units.id'], name=op.f('fk_units_parent_id_units')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_units')),
    sa.UniqueConstraint('code', name=op.f('uq_units_code'))
    )
    with op.batch_alter_table('units', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_units_parent_id'), ['parent_id'], unique=False)

    op.create_table('kb_articles',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('keywords', sa.JSON(), nullable=False),
    sa.Column('category_id', sa.Integer(), nullable=True),
    sa.Column('owner_unit_id', sa.Integer(), nullable=True),
    sa.Column('review_by', sa.Date(), nullable=False),
    sa.Column('updated_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['category_id'], ['categories.id'], name=op.f('fk_kb_articles_category_id_categories')),
    sa.ForeignKeyConstraint(['owner_unit_id'], ['units.id'], name=op.f('fk_kb_articles_owner_unit_id_units')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_kb_articles')),
    sa.UniqueConstraint('code', name=op.f('uq_kb_articles_code'))
    )
    with op.batch_alter_table('kb_articles', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_kb_articles_category_id'), ['category_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_kb_articles_owner_unit_id'), ['owner_unit_id'], unique=False)

    op.create_table('work_orders',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('number', sa.String(length=32), nullable=False),
    sa.Column('channel', sa.String(length=23), nullable=False),
    sa.Column('channel_ref', sa.String(length=128), nullable=True),
    sa.Column('item_type', sa.String(length=20), nullable=False),
    sa.Column('urgency', sa.String(length=19), nullable=False),
    sa.Column('category_id', sa.Integer(), nullable=True),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('content', sa.Text(), nullable=False),
    sa.Column('address', sa.String(length=300), nullable=False),
    sa.Column('district_id', sa.Integer(), nullable=True),
    sa.Column('citizen_name', sa.String(length=100), nullable=False),
    sa.Column('citizen_phone', sa.String(length=40), nullable=False),
    sa.Column('citizen_email', sa.String(length=254), nullable=False),
    sa.Column('confidential', sa.Boolean(), nullable=False),
    sa.Column('status', sa.String(length=24), nullable=False),
    sa.Column('received_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('dispatched_at', models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('closed_at', models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('updated_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('stage_started_at', models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('stage_due_at', models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('stage_rung', sa.Integer(), nullable=False),
    sa.Column('due_at', models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('next_due_at', models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('policy_version', sa.Integer(), nullable=False),
    sa.Column('master_id', sa.Integer(), nullable=True),
    sa.Column('designated_unit_id', sa.Integer(), nullable=True),
    sa.Column('return_count', sa.Integer(), nullable=False),
    sa.Column('redo_count', sa.Integer(), nullable=False),
    sa.Column('false_completion', sa.Boolean(), nullable=False),
    sa.Column('answer_article_id', sa.Integer(), nullable=True),
    sa.Column('flow_run_id', sa.String(length=36), nullable=True),
    sa.Column('extra', sa.JSON(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.CheckConstraint("channel IN ('hotline', 'mayor_mailbox', 'weibo', 'wechat', 'online_post', 'police_110', 'county_platform', 'open311')", name=op.f('ck_work_orders_channel_valid')),
    sa.CheckConstraint("item_type IN ('consultation', 'help_request', 'complaint', 'report', 'suggestion', 'praise')", name=op.f('ck_work_orders_item_type_valid')),
    sa.CheckConstraint("status IN ('received', 'invalid', 'merged', 'answered', 'dispatched', 'return_requested', 'handling', 'replied', 'visiting', 'closed')", name=op.f('ck_work_orders_status_valid')),
    sa.CheckConstraint("urgency IN ('normal', 'urgent', 'very_urgent')", name=op.f('ck_work_orders_urgency_valid')),
    sa.ForeignKeyConstraint(['answer_article_id'], ['kb_articles.id'], name=op.f('fk_work_orders_answer_article_id_kb_articles')),
    sa.ForeignKeyConstraint(['category_id'], ['categories.id'], name=op.f('fk_work_orders_category_id_categories')),
    sa.ForeignKeyConstraint(['designated_unit_id'], ['units.id'], name=op.f('fk_work_orders_designated_unit_id_units')),
    sa.ForeignKeyConstraint(['district_id'], ['districts.id'], name=op.f('fk_work_orders_district_id_districts')),
    sa.ForeignKeyConstraint(['master_id'], ['work_orders.id'], name=op.f('fk_work_orders_master_id_work_orders')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_work_orders')),
    sa.UniqueConstraint('channel', 'channel_ref', name='uq_work_orders_channel_ref'),
    sa.UniqueConstraint('number', name=op.f('uq_work_orders_number'))
    )
    with op.batch_alter_table('work_orders', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_work_orders_category_id'), ['category_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_work_orders_district_id'), ['district_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_work_orders_master_id'), ['master_id'], unique=False)
        batch_op.create_index('ix_work_orders_next_due_at', ['next_due_at'], unique=False)
        batch_op.create_index('ix_work_orders_status_received', ['status', 'received_at'], unique=False)

    op.create_table('action_tokens',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=128), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.Column('work_order_id', sa.Integer(), nullable=True),
    sa.Column('scope', sa.String(length=24), nullable=False),
    sa.Column('created_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('used_at', models.base.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['unit_id'], ['units.id'], name=op.f('fk_action_tokens_unit_id_units')),
    sa.ForeignKeyConstraint(['work_order_id'], ['work_orders.id'], name=op.f('fk_action_tokens_work_order_id_work_orders')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_action_tokens')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_action_tokens_token_hash'))
    )
    with op.batch_alter_table('action_tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_action_tokens_unit_id'), ['unit_id'], unique=False)

    op.create_table('assignments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('work_order_id', sa.Integer(), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.Column('role', sa.String(length=14), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('dispatched_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('sign_due_at', models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('due_at', models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('signed_at', models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('replied_at', models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('returned_at', models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('ended_at', models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('reply_text', sa.Text(), nullable=False),
    sa.Column('reply_contacted', sa.Boolean(), nullable=True),
    sa.Column('reply_solved', sa.Boolean(), nullable=True),
    sa.Column('rung', sa.Integer(), nullable=False),
    sa.Column('designated', sa.Boolean(), nullable=False),
    sa.CheckConstraint("role IN ('lead', 'assist')", name=op.f('ck_assignments_role_valid')),
    sa.ForeignKeyConstraint(['unit_id'], ['units.id'], name=op.f('fk_assignments_unit_id_units')),
    sa.ForeignKeyConstraint(['work_order_id'], ['work_orders.id'], name=op.f('fk_assignments_work_order_id_work_orders')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_assignments'))
    )
    with op.batch_alter_table('assignments', schema=None) as batch_op:
        batch_op.create_index('ix_assignments_order_active', ['work_order_id', 'active'], unique=False)
        batch_op.create_index('ix_assignments_unit_active', ['unit_id', 'active'], unique=False)

    op.create_table('events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('work_order_id', sa.Integer(), nullable=True),
    sa.Column('unit_id', sa.Integer(), nullable=True),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('actor_kind', sa.String(length=18), nullable=False),
    sa.Column('actor_id', sa.String(length=100), nullable=False),
    sa.Column('at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('from_status', sa.String(length=24), nullable=True),
    sa.Column('to_status', sa.String(length=24), nullable=True),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.CheckConstraint("actor_kind IN ('system', 'staff', 'supervisor', 'unit', 'channel')", name=op.f('ck_events_actor_kind_valid')),
    sa.ForeignKeyConstraint(['unit_id'], ['units.id'], name=op.f('fk_events_unit_id_units')),
    sa.ForeignKeyConstraint(['work_order_id'], ['work_orders.id'], name=op.f('fk_events_work_order_id_work_orders')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_events'))
    )
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.create_index('ix_events_name_at', ['name', 'at'], unique=False)
        batch_op.create_index('ix_events_order_id', ['work_order_id', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_events_unit_id'), ['unit_id'], unique=False)

    op.create_table('notifications',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('work_order_id', sa.Integer(), nullable=True),
    sa.Column('unit_id', sa.Integer(), nullable=True),
    sa.Column('recipients', sa.JSON(), nullable=False),
    sa.Column('context', sa.JSON(), nullable=False),
    sa.Column('message_id', sa.String(length=200), nullable=False),
    sa.Column('created_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('send_state', sa.String(length=15), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('claimed_until', models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('sent_at', models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=False),
    sa.CheckConstraint("send_state IN ('pending', 'sent', 'failed')", name=op.f('ck_notifications_send_state_valid')),
    sa.ForeignKeyConstraint(['unit_id'], ['units.id'], name=op.f('fk_notifications_unit_id_units')),
    sa.ForeignKeyConstraint(['work_order_id'], ['work_orders.id'], name=op.f('fk_notifications_work_order_id_work_orders')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notifications')),
    sa.UniqueConstraint('message_id', name=op.f('uq_notifications_message_id'))
    )
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.create_index('ix_notifications_due', ['send_state', 'next_attempt_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_notifications_work_order_id'), ['work_order_id'], unique=False)

    op.create_table('return_visits',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('work_order_id', sa.Integer(), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=True),
    sa.Column('contacted', sa.Boolean(), nullable=False),
    sa.Column('resolved', sa.Boolean(), nullable=False),
    sa.Column('satisfaction', sa.String(length=19), nullable=False),
    sa.Column('comment', sa.Text(), nullable=False),
    sa.Column('visited_by', sa.String(length=100), nullable=False),
    sa.Column('visited_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("satisfaction IN ('satisfied', 'basically', 'unsatisfied')", name=op.f('ck_return_visits_satisfaction_valid')),
    sa.ForeignKeyConstraint(['unit_id'], ['units.id'], name=op.f('fk_return_visits_unit_id_units')),
    sa.ForeignKeyConstraint(['work_order_id'], ['work_orders.id'], name=op.f('fk_return_visits_work_order_id_work_orders')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_return_visits'))
    )
    with op.batch_alter_table('return_visits', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_return_visits_unit_id'), ['unit_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_return_visits_work_order_id'), ['work_order_id'], unique=False)

    op.create_table('supervision_cases',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('work_order_id', sa.Integer(), nullable=True),
    sa.Column('unit_id', sa.Integer(), nullable=True),
    sa.Column('kind', sa.String(length=24), nullable=False),
    sa.Column('level', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=14), nullable=False),
    sa.Column('opened_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('closed_at', models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('evidence', sa.JSON(), nullable=False),
    sa.Column('decision', sa.String(length=40), nullable=False),
    sa.Column('finding', sa.Text(), nullable=False),
    sa.Column('decided_by', sa.String(length=100), nullable=True),
    sa.Column('on_notice', sa.Boolean(), nullable=False),
    sa.CheckConstraint("kind IN ('overdue', 'sign_limbo', 'buck_passing', 'redo', 'false_completion', 'repeat_complaint', 'kb_stale', 'decision_overdue')", name=op.f('ck_supervision_cases_kind_valid')),
    sa.CheckConstraint("status IN ('open', 'closed')", name=op.f('ck_supervision_cases_status_valid')),
    sa.ForeignKeyConstraint(['unit_id'], ['units.id'], name=op.f('fk_supervision_cases_unit_id_units')),
    sa.ForeignKeyConstraint(['work_order_id'], ['work_orders.id'], name=op.f('fk_supervision_cases_work_order_id_work_orders')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_supervision_cases'))
    )
    with op.batch_alter_table('supervision_cases', schema=None) as batch_op:
        batch_op.create_index('ix_supervision_cases_order_kind', ['work_order_id', 'kind', 'status'], unique=False)
        batch_op.create_index(batch_op.f('ix_supervision_cases_unit_id'), ['unit_id'], unique=False)

    op.create_table('extension_requests',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('work_order_id', sa.Integer(), nullable=False),
    sa.Column('assignment_id', sa.Integer(), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('requested_due_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('requested_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('decision', sa.String(length=21), nullable=False),
    sa.Column('decided_at', models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('decided_by', sa.String(length=100), nullable=True),
    sa.Column('decision_reason', sa.Text(), nullable=False),
    sa.Column('granted_due_at', models.base.UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint("decision IN ('pending', 'approved', 'rejected', 'auto_rejected')", name=op.f('ck_extension_requests_decision_valid')),
    sa.ForeignKeyConstraint(['assignment_id'], ['assignments.id'], name=op.f('fk_extension_requests_assignment_id_assignments')),
    sa.ForeignKeyConstraint(['unit_id'], ['units.id'], name=op.f('fk_extension_requests_unit_id_units')),
    sa.ForeignKeyConstraint(['work_order_id'], ['work_orders.id'], name=op.f('fk_extension_requests_work_order_id_work_orders')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_extension_requests'))
    )
    with op.batch_alter_table('extension_requests', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_extension_requests_unit_id'), ['unit_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_extension_requests_work_order_id'), ['work_order_id'], unique=False)

    op.create_table('return_requests',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('work_order_id', sa.Integer(), nullable=False),
    sa.Column('assignment_id', sa.Integer(), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('suggested_unit_id', sa.Integer(), nullable=True),
    sa.Column('evidence_note', sa.Text(), nullable=False),
    sa.Column('evidence_files', sa.JSON(), nullable=False),
    sa.Column('requested_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('decision', sa.String(length=21), nullable=False),
    sa.Column('decided_at', models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('decided_by', sa.String(length=100), nullable=True),
    sa.Column('decision_reason', sa.Text(), nullable=False),
    sa.Column('new_unit_id', sa.Integer(), nullable=True),
    sa.CheckConstraint("decision IN ('pending', 'approved', 'rejected', 'auto_rejected')", name=op.f('ck_return_requests_decision_valid')),
    sa.ForeignKeyConstraint(['assignment_id'], ['assignments.id'], name=op.f('fk_return_requests_assignment_id_assignments')),
    sa.ForeignKeyConstraint(['new_unit_id'], ['units.id'], name=op.f('fk_return_requests_new_unit_id_units')),
    sa.ForeignKeyConstraint(['suggested_unit_id'], ['units.id'], name=op.f('fk_return_requests_suggested_unit_id_units')),
    sa.ForeignKeyConstraint(['unit_id'], ['units.id'], name=op.f('fk_return_requests_unit_id_units')),
    sa.ForeignKeyConstraint(['work_order_id'], ['work_orders.id'], name=op.f('fk_return_requests_work_order_id_work_orders')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_return_requests'))
    )
    with op.batch_alter_table('return_requests', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_return_requests_unit_id'), ['unit_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_return_requests_work_order_id'), ['work_order_id'], unique=False)

    op.create_table('reviews',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('work_order_id', sa.Integer(), nullable=False),
    sa.Column('assignment_id', sa.Integer(), nullable=False),
    sa.Column('approved', sa.Boolean(), nullable=False),
    sa.Column('automatic', sa.Boolean(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('reviewed_by', sa.String(length=100), nullable=False),
    sa.Column('reviewed_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['assignment_id'], ['assignments.id'], name=op.f('fk_reviews_assignment_id_assignments')),
    sa.ForeignKeyConstraint(['work_order_id'], ['work_orders.id'], name=op.f('fk_reviews_work_order_id_work_orders')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reviews'))
    )
    with op.batch_alter_table('reviews', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_reviews_work_order_id'), ['work_order_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('reviews', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_reviews_work_order_id'))

    op.drop_table('reviews')
    with op.batch_alter_table('return_requests', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_return_requests_work_order_id'))
        batch_op.drop_index(batch_op.f('ix_return_requests_unit_id'))

    op.drop_table('return_requests')
    with op.batch_alter_table('extension_requests', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_extension_requests_work_order_id'))
        batch_op.drop_index(batch_op.f('ix_extension_requests_unit_id'))

    op.drop_table('extension_requests')
    with op.batch_alter_table('supervision_cases', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_supervision_cases_unit_id'))
        batch_op.drop_index('ix_supervision_cases_order_kind')

    op.drop_table('supervision_cases')
    with op.batch_alter_table('return_visits', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_return_visits_work_order_id'))
        batch_op.drop_index(batch_op.f('ix_return_visits_unit_id'))

    op.drop_table('return_visits')
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_notifications_work_order_id'))
        batch_op.drop_index('ix_notifications_due')

    op.drop_table('notifications')
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_events_unit_id'))
        batch_op.drop_index('ix_events_order_id')
        batch_op.drop_index('ix_events_name_at')

    op.drop_table('events')
    with op.batch_alter_table('assignments', schema=None) as batch_op:
        batch_op.drop_index('ix_assignments_unit_active')
        batch_op.drop_index('ix_assignments_order_active')

    op.drop_table('assignments')
    with op.batch_alter_table('action_tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_action_tokens_unit_id'))

    op.drop_table('action_tokens')
    with op.batch_alter_table('work_orders', schema=None) as batch_op:
        batch_op.drop_index('ix_work_orders_status_received')
        batch_op.drop_index('ix_work_orders_next_due_at')
        batch_op.drop_index(batch_op.f('ix_work_orders_master_id'))
        batch_op.drop_index(batch_op.f('ix_work_orders_district_id'))
        batch_op.drop_index(batch_op.f('ix_work_orders_category_id'))

    op.drop_table('work_orders')
    with op.batch_alter_table('kb_articles', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_kb_articles_owner_unit_id'))
        batch_op.drop_index(batch_op.f('ix_kb_articles_category_id'))

    op.drop_table('kb_articles')
    with op.batch_alter_table('units', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_units_parent_id'))

    op.drop_table('units')
    op.drop_table('policy_versions')
    op.drop_table('order_counters')
    with op.batch_alter_table('districts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_districts_parent_id'))

    op.drop_table('districts')
    op.drop_table('channel_keys')
    with op.batch_alter_table('categories', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_categories_parent_id'))

    op.drop_table('categories')
