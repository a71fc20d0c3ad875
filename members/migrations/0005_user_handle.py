from django.db import migrations, models

import members.models


def backfill_handles(apps, schema_editor):
    """Existing members get a handle from their display name where it is plain ASCII and free,
    otherwise a random placeholder they can change on their profile."""
    User = apps.get_model("members", "User")
    taken = set()
    for user in User.objects.order_by("pk").only("pk", "display_name").iterator():
        handle = members.models.handle_from_name(user.display_name)
        if not handle or handle in taken:
            handle = members.models.default_handle()
            while handle in taken:
                handle = members.models.default_handle()
        taken.add(handle)
        User.objects.filter(pk=user.pk).update(handle=handle)


class Migration(migrations.Migration):
    dependencies = [("members", "0004_free_tier")]

    operations = [
        migrations.AddField(
            model_name="user",
            name="handle",
            field=models.CharField(max_length=30, null=True),
        ),
        migrations.RunPython(backfill_handles, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="user",
            name="handle",
            field=models.CharField(
                default=members.models.default_handle,
                error_messages={"unique": "That handle is taken. Choose another."},
                help_text="Others mention you as @handle in the forum.",
                max_length=30,
                unique=True,
                validators=[members.models.validate_handle],
                verbose_name="handle",
            ),
        ),
    ]
