"""Sensible defaults so points work out of the box; the creator edits them in the admin."""

from django.db import migrations

RULES = [
    ("daily_visit", 5, 5),
    ("content_view", 2, 20),
    ("lesson_complete", 10, None),
    ("course_complete", 50, None),
    ("comment", 3, 15),
    ("post", 5, 25),
    ("answer_accepted", 25, None),
    ("like_received", 1, 10),
    ("event_attended", 20, None),
    ("referral", 100, None),
    ("renewal", 30, None),
]
LEVELS = [
    ("Newcomer", 0, "🌱"),
    ("Regular", 100, "🙂"),
    ("Contributor", 300, "✍️"),
    ("Insider", 750, "🔑"),
    ("Champion", 1500, "🏆"),
    ("Legend", 3000, "🌟"),
]


def create(apps, schema_editor):
    PointsRule = apps.get_model("points", "PointsRule")
    Level = apps.get_model("points", "Level")
    Privilege = apps.get_model("points", "Privilege")
    if not PointsRule.objects.exists():
        PointsRule.objects.bulk_create(
            PointsRule(action=action, points=points, daily_cap=cap) for action, points, cap in RULES
        )
    if not Level.objects.exists():
        levels = {name: Level.objects.create(name=name, threshold=t, badge=badge) for name, t, badge in LEVELS}
        discount = Privilege.objects.create(kind="member_discount", name="5% member discount", value=5)
        support = Privilege.objects.create(kind="priority_support", name="Priority answers")
        posting = Privilege.objects.create(kind="restricted_posting", name="Start topics in Showcase")
        levels["Contributor"].privileges.add(posting)
        levels["Champion"].privileges.add(discount, posting)
        levels["Legend"].privileges.add(discount, support, posting)


class Migration(migrations.Migration):
    dependencies = [("points", "0001_initial")]

    operations = [migrations.RunPython(create, migrations.RunPython.noop)]
