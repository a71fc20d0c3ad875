"""Store ViewHistory.pairs uncompressed on PostgreSQL.

A member's packed sums are binary numbers that compress poorly; PostgreSQL tries to compress
every value over 2 kB anyway (TOAST), which made rewriting a night's histories twice as slow.
EXTERNAL keeps large values out of line without compressing them. Other databases: nothing.
"""

from django.db import migrations


def storage(mode: str):
    def apply(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(f"ALTER TABLE content_viewhistory ALTER COLUMN pairs SET STORAGE {mode}")

    return apply


class Migration(migrations.Migration):
    dependencies = [("content", "0005_view_retention")]

    operations = [migrations.RunPython(storage("EXTERNAL"), storage("EXTENDED"))]
