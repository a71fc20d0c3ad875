"""MemberFeatures in blocks (1/3): the new columns beside the old per-member ones."""

from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("analytics", "0003_conversion_by_key"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveConstraint(model_name="memberfeatures", name="analytics_features_once"),
        migrations.RenameField(model_name="memberfeatures", old_name="values", new_name="old_values"),
        migrations.AlterField(
            model_name="memberfeatures",
            name="old_values",
            field=models.JSONField(null=True),
        ),
        migrations.AlterField(
            model_name="memberfeatures",
            name="member",
            field=models.ForeignKey(
                null=True,
                on_delete=models.deletion.CASCADE,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AddField(
            model_name="memberfeatures", name="first_member_id", field=models.BigIntegerField(null=True)
        ),
        migrations.AddField(
            model_name="memberfeatures", name="last_member_id", field=models.BigIntegerField(null=True)
        ),
        migrations.AddField(model_name="memberfeatures", name="names", field=models.JSONField(null=True)),
        migrations.AddField(
            model_name="memberfeatures", name="member_ids", field=models.BinaryField(null=True)
        ),
        migrations.AddField(model_name="memberfeatures", name="values", field=models.BinaryField(null=True)),
    ]
