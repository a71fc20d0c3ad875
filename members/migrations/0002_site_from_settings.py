from urllib.parse import urlsplit

from django.conf import settings
from django.db import migrations


def set_site(apps, schema_editor):
    # allauth's emails name the site; "example.com" would confuse members.
    Site = apps.get_model("sites", "Site")
    domain = urlsplit(settings.SITE_URL).netloc or "localhost"
    Site.objects.update_or_create(
        pk=settings.SITE_ID, defaults={"domain": domain[:100], "name": settings.SITE_NAME[:50]}
    )


class Migration(migrations.Migration):
    dependencies = [
        ("members", "0001_initial"),
        ("sites", "0002_alter_domain_unique"),
    ]

    operations = [migrations.RunPython(set_site, migrations.RunPython.noop)]
