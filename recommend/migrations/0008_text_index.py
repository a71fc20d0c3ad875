"""TextIndex: what a build's similar-text stage keeps for the next one (recommend.text_index).

Its arrays are binary numbers that compress poorly, so on PostgreSQL they are stored out of
line without compression (STORAGE EXTERNAL), as content.0006 does for the view history.
"""

import django.db.models.deletion
from django.db import migrations, models


def storage(mode: str):
    def apply(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            for column in ("items", "arrays"):
                schema_editor.execute(f"ALTER TABLE recommend_textindex ALTER COLUMN {column} SET STORAGE {mode}")

    return apply


class Migration(migrations.Migration):
    dependencies = [("recommend", "0007_item_neighbour_lists")]

    operations = [
        migrations.CreateModel(
            name="TextIndex",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("fitted_at", models.DateTimeField()),
                ("k", models.PositiveSmallIntegerField()),
                ("vectoriser", models.CharField(max_length=40)),
                ("changed_since_fit", models.PositiveIntegerField(default=0)),
                ("items", models.BinaryField()),
                ("vocabulary", models.BinaryField()),
                ("arrays", models.BinaryField()),
                (
                    "build",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="text_index",
                        to="recommend.neighbourbuild",
                    ),
                ),
            ],
        ),
        migrations.RunPython(storage("EXTERNAL"), storage("EXTENDED")),
    ]
