from typing import Any

from django.core.management.base import BaseCommand

from community.services import refresh_post_html
from community.services.comments import refresh_comment_html
from content.services import refresh_rendered_bodies


class Command(BaseCommand):
    help = (
        "Render and store the HTML of item bodies, forum posts and comments whose stored HTML is "
        "missing or stale (a bulk import, a body changed outside the services, a new Markdown "
        "renderer or sanitiser configuration). Idempotent; only stale rows are written. The "
        "nightly job runs it too; until then a stale row is rendered when shown."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        bodies, posts, comments = refresh_rendered_bodies(), refresh_post_html(), refresh_comment_html()
        self.stdout.write(f"stored the HTML of {bodies} item bodies, {posts} posts and {comments} comments")
