from django.core.management.base import BaseCommand

from community import tasks

JOBS = {
    "event-reminders": (tasks.send_event_reminders, "reminders sent"),
    "daily-digests": (tasks.send_daily_digests, "daily digests sent"),
    "weekly-digest": (tasks.send_weekly_digest, "weekly digests sent"),
    "level-ups": (tasks.collect_level_ups, "level-ups put in the bell"),
}


class Command(BaseCommand):
    help = (
        "Run the community's scheduled jobs, for cron users (Celery beat runs them otherwise): "
        "event-reminders every 10 minutes, level-ups every 5, daily-digests daily, weekly-digest "
        "weekly. Reminders, daily digests and level-up notices never go out twice."
    )

    def add_arguments(self, parser):
        parser.add_argument("jobs", nargs="+", choices=sorted(JOBS), help="which jobs to run")

    def handle(self, *args, **options):
        for name in options["jobs"]:
            task, what = JOBS[name]
            self.stdout.write(f"{name}: {task()} {what}")
