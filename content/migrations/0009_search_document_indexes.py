"""The library search's documents on PostgreSQL: GIN indexes on both, a database-level
ON DELETE CASCADE from items, and the documents of existing items written once. Other
databases skip this migration's SQL (the table stays empty; they search with substrings).
Separate from 0008 because Django adds 0008's foreign key only at the end of that migration."""

from django.db import migrations

INDEXES = ["public", "body"]


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    # Deleting an item deletes its documents in the database too, so code that does not know
    # this table (an older release against a migrated database) can still delete items.
    schema_editor.execute(
        """
        DO $$
        DECLARE name text;
        BEGIN
          SELECT conname INTO name FROM pg_constraint
          WHERE conrelid = 'content_searchdocument'::regclass AND contype = 'f';
          EXECUTE 'ALTER TABLE content_searchdocument DROP CONSTRAINT ' || quote_ident(name);
        END $$;
        ALTER TABLE content_searchdocument ADD CONSTRAINT content_searchdocument_content_fk
          FOREIGN KEY (content_id) REFERENCES content_content (id) ON DELETE CASCADE
          DEFERRABLE INITIALLY DEFERRED;
        """
    )
    from content.search import write_documents

    Content = apps.get_model("content", "Content")
    SearchDocument = apps.get_model("content", "SearchDocument")
    pks = list(Content.objects.order_by("pk").values_list("pk", flat=True))
    write_documents(content_model=Content, document_model=SearchDocument, pks=pks)
    # Built after the rows are in: an index filled row by row keeps them in its pending list,
    # which the planner prices so high that it scans every body document instead.
    schema_editor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # no pending foreign-key checks left
    for column in INDEXES:
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS content_search_{column}_gin ON content_searchdocument "
            f'USING gin ("{column}")'
        )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for column in INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS content_search_{column}_gin")


class Migration(migrations.Migration):
    dependencies = [("content", "0008_search_documents")]

    operations = [migrations.RunPython(create, drop)]
