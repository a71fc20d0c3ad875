from django.db import migrations


def create_free_tier(apps, schema_editor):
    Tier = apps.get_model("members", "Tier")
    Tier.objects.get_or_create(
        rank=0,
        defaults={
            "name": "Free",
            "slug": "free",
            "description": "Join the community and read everything public.",
            "perks": "Public articles and videos\nCommunity forum\nMonthly newsletter",
        },
    )


class Migration(migrations.Migration):
    dependencies = [("members", "0003_billing")]

    operations = [migrations.RunPython(create_free_tier, migrations.RunPython.noop)]
