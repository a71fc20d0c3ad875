"""MemberFeatures in blocks (3/3): the per-member columns go, the block columns are required."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("analytics", "0005_feature_blocks_data")]

    operations = [
        migrations.RemoveField(model_name="memberfeatures", name="member"),
        migrations.RemoveField(model_name="memberfeatures", name="old_values"),
        migrations.AlterField(
            model_name="memberfeatures", name="first_member_id", field=models.BigIntegerField()
        ),
        migrations.AlterField(
            model_name="memberfeatures", name="last_member_id", field=models.BigIntegerField()
        ),
        migrations.AlterField(
            model_name="memberfeatures",
            name="names",
            field=models.JSONField(help_text="The feature names: the columns of `values`, in order."),
        ),
        migrations.AlterField(model_name="memberfeatures", name="member_ids", field=models.BinaryField()),
        migrations.AlterField(model_name="memberfeatures", name="values", field=models.BinaryField()),
        migrations.AlterModelOptions(
            name="memberfeatures",
            options={"verbose_name": "member features", "verbose_name_plural": "member features"},
        ),
        migrations.AddConstraint(
            model_name="memberfeatures",
            constraint=models.UniqueConstraint(
                fields=("run", "first_member_id"), name="analytics_feature_block_once"
            ),
        ),
        migrations.AddConstraint(
            model_name="memberfeatures",
            constraint=models.CheckConstraint(
                condition=models.Q(("first_member_id__lte", models.F("last_member_id"))),
                name="analytics_feature_block_ordered",
            ),
        ),
    ]
