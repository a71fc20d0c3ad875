import django.core.validators
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("members", "0008_last_seen"),
    ]

    operations = [
        migrations.AddField(
            model_name="user",
            name="deletion_due_at",
            field=models.DateTimeField(
                blank=True, db_index=True, editable=False, null=True, verbose_name="deletion due"
            ),
        ),
        migrations.AddField(
            model_name="user",
            name="deleted_at",
            field=models.DateTimeField(
                blank=True, editable=False, null=True, verbose_name="deleted (anonymised)"
            ),
        ),
        migrations.CreateModel(
            name="AccountDeletionSettings",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "grace_days",
                    models.PositiveSmallIntegerField(
                        default=14,
                        help_text=(
                            "Days between a member's request and the erasure of their personal data. "
                            "Signing in during this time cancels the deletion. 0: erased at the next run "
                            "of the purge job."
                        ),
                        validators=[django.core.validators.MaxValueValidator(365)],
                        verbose_name="grace period (days)",
                    ),
                ),
                (
                    "posts",
                    models.CharField(
                        choices=[
                            ("keep", "kept, signed “Deleted member”"),
                            ("remove", "removed (other members' replies stay)"),
                        ],
                        default="keep",
                        help_text=(
                            "Removed: their forum posts and comments are deleted; a topic or comment "
                            "that other members replied to keeps its replies and says its text was removed."
                        ),
                        max_length=8,
                        verbose_name="posts and comments of deleted members",
                    ),
                ),
                ("updated_at", models.DateTimeField(auto_now=True)),
            ],
            options={
                "verbose_name": "account deletion settings",
                "verbose_name_plural": "account deletion settings",
            },
        ),
    ]
