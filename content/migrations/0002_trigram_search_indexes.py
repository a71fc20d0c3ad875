"""Trigram indexes for the library search on PostgreSQL (substring search on title, summary
and body). Other databases skip this migration's SQL; search still works there, unindexed."""

from django.db import migrations

COLUMNS = ["title", "summary", "body"]


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for column in COLUMNS:
        # Matches the expression Django's icontains produces: UPPER("col"::text) LIKE UPPER(%s)
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS content_{column}_trgm ON content_content "
            f'USING gin ((UPPER("{column}"::text)) gin_trgm_ops)'
        )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for column in COLUMNS:
        schema_editor.execute(f"DROP INDEX IF EXISTS content_{column}_trgm")


class Migration(migrations.Migration):
    dependencies = [("content", "0001_initial")]

    operations = [migrations.RunPython(create, drop)]
