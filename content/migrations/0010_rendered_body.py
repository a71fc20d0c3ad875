"""Items keep their body's sanitized HTML and table of contents in a table beside theirs
(content.markdown, selectors.rendered_body_of), filled here for the items there are."""

import django.db.models.deletion
from django.db import migrations, models


def fill(apps, schema_editor):
    from content.rendered import write_rendered_bodies

    write_rendered_bodies(
        content_model=apps.get_model("content", "Content"),
        rendered_model=apps.get_model("content", "RenderedBody"),
    )


class Migration(migrations.Migration):
    dependencies = [("content", "0009_search_document_indexes")]

    operations = [
        migrations.CreateModel(
            name="RenderedBody",
            fields=[
                (
                    "content",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="rendered_body",
                        serialize=False,
                        to="content.content",
                    ),
                ),
                ("source_key", models.CharField(max_length=64)),
                ("html", models.TextField()),
                ("toc", models.JSONField(default=list)),
            ],
        ),
        migrations.RunPython(fill, migrations.RunPython.noop, elidable=True),
    ]
