"""Stored search documents for the library search (content/search.py): a table beside
content_content, so that no list of items loads them. Indexed and filled by 0009."""

import django.contrib.postgres.search
import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("content", "0007_member_interests")]

    operations = [
        migrations.CreateModel(
            name="SearchDocument",
            fields=[
                (
                    "content",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="search_document",
                        serialize=False,
                        to="content.content",
                    ),
                ),
                ("public", django.contrib.postgres.search.SearchVectorField(null=True)),
                ("body", django.contrib.postgres.search.SearchVectorField(null=True)),
                ("refreshed_at", models.DateTimeField(default=django.utils.timezone.now)),
            ],
        ),
    ]
