"""Start every member's consent history from what was stored before it existed: one row per
member and consent, with the current value, stamped with the time of the last change (or the
sign-up, when the member never changed it), source "backfill"."""

from django.db import migrations

# consent kind: (value column, changed-at column), as in members.consent.CONSENT_FIELDS
COLUMNS = {
    "analytics": ("analytics_consent", "analytics_consent_at"),
    "personalisation": ("personalisation_consent", "personalisation_consent_at"),
    "marketing": ("announcements_email", "announcements_email_at"),
}
BATCH = 2000


def seed(apps, schema_editor):
    User = apps.get_model("members", "User")
    ConsentEvent = apps.get_model("members", "ConsentEvent")
    fields = ["pk", "date_joined"] + [column for pair in COLUMNS.values() for column in pair]
    rows = User.objects.order_by("pk").values_list(*fields)
    batch = []
    for pk, joined, *values in rows.iterator(chunk_size=BATCH):
        current = dict(zip(fields[2:], values, strict=True))
        for kind, (value, changed_at) in COLUMNS.items():
            batch.append(
                ConsentEvent(
                    member_id=pk,
                    kind=kind,
                    granted=bool(current[value]),
                    at=current[changed_at] or joined,
                    source="backfill",
                )
            )
        if len(batch) >= BATCH:
            ConsentEvent.objects.bulk_create(batch)
            batch = []
    ConsentEvent.objects.bulk_create(batch)


def unseed(apps, schema_editor):
    apps.get_model("members", "ConsentEvent").objects.filter(source="backfill").delete()


class Migration(migrations.Migration):
    dependencies = [("members", "0011_consent_history_and_exports")]

    operations = [migrations.RunPython(seed, unseed)]
