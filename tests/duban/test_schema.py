"""The migrations build exactly the schema the models declare, on both databases."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

import models
from duban.db import get_engine


def test_migrated_schema_matches_the_models(db_url):
    with get_engine(db_url).connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), models.Base.metadata)
    # The knowledge base's search indexes (SQLite's full-text tables, PostgreSQL's trigram index) are made
    # by its migration alone, outside the models.
    differences = [d for d in differences if not (d[0] == "remove_table" and d[1].name.startswith("kb_articles_fts"))
                   and not (d[0] == "remove_index" and d[1].name == "ix_kb_articles_search_trgm")]
    assert differences == []


def test_a_units_assignment_on_an_order_is_found_through_the_order(db_url):
    indexes = {i["name"]: i["column_names"] for i in inspect(get_engine(db_url)).get_indexes("assignments")}
    assert indexes["ix_assignments_order_unit_active"] == ["work_order_id", "unit_id", "active"]
