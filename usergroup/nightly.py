"""The operator's nightly chain: every nightly job in order, each timed, one summary.

Used by `manage.py run_nightly` (cron) and by the Celery beat task `usergroup.tasks.run_nightly`.
A failing job is reported and the chain goes on, so one broken stage does not hold back the
others; the caller turns any failure into a non-zero exit or a failed task.
"""

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)


def _billing() -> object:
    from members.services import retry_failed_webhooks, run_billing_cycle

    return run_billing_cycle() | {"webhooks_retried": retry_failed_webhooks()}


def _view_history() -> object:
    from content.history import roll_up_views

    return roll_up_views()


def _drop_old_views() -> object:
    from content.history import drop_old_views

    return drop_old_views()


def _stats() -> object:
    from content.services import refresh_stats

    return {"items": refresh_stats()}


def _stored_html() -> object:
    from community.services import refresh_post_html
    from community.services.comments import refresh_comment_html
    from content.services import refresh_rendered_bodies

    # Only rows whose stored HTML is missing or stale are written: a quick pass most nights.
    return {
        "bodies": refresh_rendered_bodies(),
        "posts": refresh_post_html(),
        "comments": refresh_comment_html(),
    }


def _active_days() -> object:
    from analytics.rollups import roll_up_active_days

    return {"pairs_added": roll_up_active_days()}


def _active_periods() -> object:
    from analytics.rollups import roll_up_periods

    return {"periods_written": roll_up_periods()}


def _profiles() -> object:
    from analytics.services import build_member_profiles, run_summary

    return run_summary(run=build_member_profiles())


def _attribution() -> object:
    from analytics.attribution import roll_up_conversions

    return roll_up_conversions()


def _dashboard() -> object:
    from analytics.dashboard import warm_dashboards

    return {"stored": len(warm_dashboards())}


def _crm_lists() -> object:
    from analytics.selectors import store_directory_lists
    from analytics.views.crm import draw_first_pages

    return {"stored": len(store_directory_lists()), "rows drawn": draw_first_pages()}


def _recommendations() -> object:
    from recommend.services import build_neighbours, store_recent_rankings

    build = build_neighbours()
    # Every ranking names the build: the members seen lately get theirs computed for the new one,
    # so their first list after the cache is emptied is one row, not a ranking computed afresh.
    stored = store_recent_rankings()
    return {"items": build.items, "members": build.members, "seconds": build.durations, "rankings": stored}


JOBS: tuple[tuple[str, Callable[[], object]], ...] = (
    ("billing cycle", _billing),
    ("view history", _view_history),  # before the jobs that read views
    ("drop old views", _drop_old_views),  # past VIEW_LOG_RETENTION_DAYS, once summed just above
    ("content stats", _stats),
    ("stored html", _stored_html),  # after a renderer change or a bulk import; else nothing to do
    ("active days", _active_days),
    ("active periods", _active_periods),  # counted from the active days, so right after them
    ("member profiles", _profiles),
    ("attribution", _attribution),
    ("dashboard figures", _dashboard),  # from everything above, so the creator's first look is quick
    ("crm lists", _crm_lists),  # the directory's first pages of the new run, counted and drawn
    ("recommendations", _recommendations),
)


@dataclass(frozen=True)
class JobResult:
    name: str
    ok: bool
    seconds: float
    result: object

    def as_dict(self) -> dict:
        return {"job": self.name, "ok": self.ok, "seconds": round(self.seconds, 2), "result": self.result}


def run_nightly(*, jobs: tuple[tuple[str, Callable[[], object]], ...] = JOBS) -> list[JobResult]:
    results = []
    for name, job in jobs:
        # Each stage in the log as it starts and ends: where a long chain is, or where it died.
        log.info("Nightly job %r started", name)
        started = time.perf_counter()
        try:
            outcome, ok = job(), True
        except Exception as exc:
            log.exception("Nightly job %r failed", name)
            outcome, ok = f"{type(exc).__name__}: {exc}", False
        else:
            log.info("Nightly job %r done in %.2f s", name, time.perf_counter() - started)
        results.append(JobResult(name, ok, time.perf_counter() - started, outcome))
    return results
