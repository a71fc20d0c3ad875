"""python manage.py warm_dashboard: what the nightly job computes for the creator's first look,
now (e.g. after the cache was emptied, or a deploy): the dashboard's default range, so no reader
waits for the count, and the CRM directory's first page, unfiltered and per persona (its count,
its members and their rows drawn), so its first visit counts and draws nothing."""

from typing import Any

from django.core.management.base import BaseCommand

from analytics.dashboard import warm_dashboards
from analytics.selectors import store_directory_lists
from analytics.views.crm import draw_first_pages


class Command(BaseCommand):
    help = (
        "Compute and cache the creator dashboard's figures for the last 12 months, in every language, "
        "and the CRM directory's first page (newest members first), unfiltered and for each persona: "
        "its count, its members and their rows, in every language."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        keys = warm_dashboards()
        self.stdout.write(f"Stored the dashboard's figures under {len(keys)} keys.")
        lists = store_directory_lists()
        drawn = draw_first_pages()
        self.stdout.write(f"Stored {len(lists)} lists of the CRM directory and drew {drawn} of their rows.")
