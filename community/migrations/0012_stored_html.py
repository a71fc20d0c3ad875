"""Forum posts and comments keep their body's sanitized HTML beside it (content.markdown), filled
here for the rows there are (about 30 s per 100,000 posts)."""

from django.db import migrations, models


def fill(apps, schema_editor):
    from content.rendered import restamp

    for name in ("Post", "Comment"):
        restamp(apps.get_model("community", name))


class Migration(migrations.Migration):
    dependencies = [("community", "0011_category_default_kind")]

    operations = [
        migrations.AddField(
            model_name="comment",
            name="body_html",
            field=models.TextField(blank=True, default="", editable=False),
        ),
        migrations.AddField(
            model_name="comment",
            name="body_html_key",
            field=models.CharField(blank=True, default="", editable=False, max_length=64),
        ),
        migrations.AddField(
            model_name="post",
            name="body_html",
            field=models.TextField(blank=True, default="", editable=False),
        ),
        migrations.AddField(
            model_name="post",
            name="body_html_key",
            field=models.CharField(blank=True, default="", editable=False, max_length=64),
        ),
        migrations.RunPython(fill, migrations.RunPython.noop, elidable=True),
    ]
