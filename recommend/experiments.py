"""A/B experiments on members' recommended lists.

Assignment: each member sees one variant of the running experiment, picked by a stable hash of
the experiment's key and the member's id (the same on every process and every run, so a member
never switches variant while the experiment runs).

What is logged, and when: an `Impression` row per entry shown, written by `log_impressions`
only while a running experiment covers the member. Outside experiments nothing is written, so
showing a list stays a read-only GET. A click goes through `follow_url` → the `recommend:follow`
view, which stamps `clicked_at` on the member's own impression once.

Reading the results: `variant_stats` gives each variant's click-through rate with a 95% Wilson
interval and compares it with the first variant (the control) by a two-proportion z-test. The
statistics are pure functions over counts (`wilson_interval`, `compare_proportions`) so tests pin
them against hand computation.
"""

from __future__ import annotations

import builtins
import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, TypedDict

from django.core import signing
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import Count, Q
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from members import audit
from members.errors import DomainError
from members.models import User

from .models import Experiment, Impression, RecommendSettings, Variant

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations  # django-stubs' types, not needed at run time


class _Counted(TypedDict):
    shown: int
    clicked: int
    reached: int


# A variant's numbers mean little below these; the admin says "Not enough data yet" until every
# variant has at least this many impressions and clicks. 100 impressions keep the normal
# approximation behind the z-test reasonable for CTRs of a few percent; 10 clicks keep a single
# member's clicking from deciding the result.
MIN_IMPRESSIONS = 100
MIN_CLICKS = 10

# Two-sided 95%: the standard normal quantile at 0.975 (scipy.stats.norm.ppf(0.975)).
Z_95 = 1.959963984540054

# The running experiment is read on every list a member sees; it changes only when the creator
# starts, stops or promotes, which clears this key at once (and again after commit).
CACHE_KEY = "recommend:running-experiment:v1"
CACHE_SECONDS = 60

# Click links carry the impression id signed with this salt; a digest email may be opened late,
# hence a generous age. An expired or tampered token is a 404.
FOLLOW_SALT = "recommend.experiments.follow"
FOLLOW_MAX_AGE = timedelta(days=30)


class ExperimentError(DomainError):
    """The creator asked for something an experiment cannot do now (message already translated)."""


# --- Assignment ------------------------------------------------------------------------------


def bucket(*, key: str, member_id: int) -> float:
    """A number in [0, 1) from sha256 of "key:member_id": stable across processes (unlike
    hash()), uniform, and independent between experiments with different keys."""
    digest = hashlib.sha256(f"{key}:{member_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def pick_variant(variants: Sequence[tuple[int, int]], u: float) -> int:
    """The id of the variant whose cumulative-weight slice holds u, from (id, weight) pairs in a
    fixed order; a variant of weight 2 gets twice the members of one of weight 1."""
    if not variants:
        raise ValueError("pick_variant needs at least one variant")
    total = sum(weight for _id, weight in variants)
    if total <= 0:
        raise ValueError("variant weights must add up to more than 0")
    threshold = u * total
    cumulative = 0
    for variant_id, weight in variants:
        cumulative += weight
        if threshold < cumulative:
            return variant_id
    return variants[-1][0]  # u rounding up to 1.0 lands in the last slice


def experiments_changed() -> None:
    """Forget the cached running experiment, now and once the current transaction commits (a
    reader between the two would otherwise cache the state from before the commit)."""
    cache.delete(CACHE_KEY)
    transaction.on_commit(lambda: cache.delete(CACHE_KEY))


def running_experiment() -> Experiment | None:
    """The running experiment with its variants (in id order), or None; cached for a minute."""
    cached = cache.get(CACHE_KEY)
    if cached is not None:
        # A one-element list, or an empty one for "none running": None means a cache miss.
        return cached[0] if cached else None
    experiment = (
        Experiment.objects.filter(status=Experiment.Status.RUNNING).prefetch_related("variants").first()
    )
    cache.set(CACHE_KEY, [experiment] if experiment else [], CACHE_SECONDS)
    return experiment


def variant_for(*, member: User) -> Variant | None:
    """The variant of the running experiment this member sees, or None.

    Only signed-in members who allowed personalised recommendations take part: the others get
    the popular list whatever the variant, so counting them would dilute every variant alike,
    and nothing about their reading is logged.
    """
    if not member.is_authenticated or not member.personalisation_consent:
        return None
    experiment = running_experiment()
    if experiment is None:
        return None
    variants = list(experiment.variants.all())
    if not variants:
        return None
    chosen = pick_variant(
        [(v.pk, v.weight) for v in variants], bucket(key=experiment.key, member_id=member.pk)
    )
    return next(v for v in variants if v.pk == chosen)


# --- Impressions and clicks ----------------------------------------------------------------


REPEAT_WINDOW = timedelta(minutes=30)


def log_impressions(
    *,
    member: User,
    list: str,  # named after Impression.list; `builtins.list` below where the type is meant
    variant: Variant | None,
    items: Sequence[int] = (),
    threads: Sequence[int] = (),
) -> builtins.list[Impression]:
    """One row per entry shown (items first, then threads), positions from 0, in one insert.

    Called only where a running experiment covers the member (`variant_for` gave a variant);
    with no variant nothing is written, so lists outside experiments leave no trace.
    """
    if variant is None:
        return []
    if list not in Impression.List.values:
        raise ValueError(f"unknown list {list!r}")
    now = timezone.now()
    # The same list seen again soon (a reload, the back button, the login landing on home) is
    # one impression, not several: reuse the recent unclicked ones, so reloads do not dilute CTR.
    recent = {
        (row.item_id, row.thread_id): row
        for row in Impression.objects.filter(
            member=member,
            variant=variant,
            list=list,
            clicked_at__isnull=True,
            shown_at__gte=now - REPEAT_WINDOW,
        ).filter(Q(item_id__in=builtins.list(items)) | Q(thread_id__in=builtins.list(threads)))
    }
    wanted = [(item_id, None) for item_id in items] + [(None, thread_id) for thread_id in threads]
    rows = [
        recent.get(key)
        or Impression(
            member=member,
            variant=variant,
            list=list,
            position=n,
            item_id=key[0],
            thread_id=key[1],
            shown_at=now,
        )
        for n, key in enumerate(wanted)
    ]
    Impression.objects.bulk_create([row for row in rows if row.pk is None])
    return rows


def follow_url(impression: Impression) -> str:
    """The link a shown entry points at: the click view with the impression id signed, so a
    member cannot forge clicks on other impressions or send anyone elsewhere."""
    token = signing.dumps(impression.pk, salt=FOLLOW_SALT)
    return reverse("recommend:follow", args=[token])


def impression_id_from_token(token: str) -> int | None:
    """The impression id a follow token carries, or None if it is tampered with or expired."""
    try:
        value = signing.loads(token, salt=FOLLOW_SALT, max_age=FOLLOW_MAX_AGE)
    except signing.BadSignature:  # SignatureExpired is a BadSignature
        return None
    return value if isinstance(value, int) else None


def target_url(impression: Impression) -> str:
    """Where an impression leads: its own item's or thread's page, never anything else."""
    if impression.item is not None:
        return reverse("content:detail", args=[impression.item.slug])
    if impression.thread is None:  # the table's check constraint allows neither
        raise ValueError(f"impression {impression.pk} leads nowhere")
    return impression.thread.get_absolute_url()


def record_click(*, member: User, impression_id: int) -> Impression:
    """Stamp the first click on one of the member's own impressions; later clicks change
    nothing. Raises Impression.DoesNotExist for another member's impression."""
    # One conditional UPDATE: two clicks racing cannot both count, and no row lock is held.
    Impression.objects.filter(pk=impression_id, member=member, clicked_at__isnull=True).update(
        clicked_at=timezone.now()
    )
    return Impression.objects.select_related("item", "thread").get(pk=impression_id, member=member)


# --- Results -------------------------------------------------------------------------------


def wilson_interval(*, successes: int, trials: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval for a proportion: unlike p ± z·√(p(1−p)/n) it stays inside
    [0, 1] and is sensible for small counts and rates near 0. (0, 1) when there are no trials."""
    if trials <= 0:
        return 0.0, 1.0
    p = successes / trials
    z2 = z * z
    denominator = 1 + z2 / trials
    centre = (p + z2 / (2 * trials)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials))
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class Comparison:
    """A variant against the control: difference in CTR (variant − control), the pooled
    two-proportion z statistic and its two-sided p-value."""

    difference: float
    z: float
    p_value: float


def compare_proportions(
    *, control_successes: int, control_trials: int, successes: int, trials: int
) -> Comparison | None:
    """Two-proportion z-test with the pooled standard error; None if either side has no trials."""
    if control_trials <= 0 or trials <= 0:
        return None
    p_control = control_successes / control_trials
    p = successes / trials
    pooled = (control_successes + successes) / (control_trials + trials)
    se = math.sqrt(pooled * (1 - pooled) * (1 / control_trials + 1 / trials))
    if se == 0:  # both all clicks or both none: the rates are equal, nothing to test
        return Comparison(difference=p - p_control, z=0.0, p_value=1.0)
    z = (p - p_control) / se
    # Two-sided: P(|Z| ≥ |z|) = erfc(|z| / √2), the same as 2·scipy.stats.norm.sf(|z|).
    return Comparison(difference=p - p_control, z=z, p_value=math.erfc(abs(z) / math.sqrt(2)))


def has_enough_data(*, impressions: int, clicks: int) -> bool:
    return impressions >= MIN_IMPRESSIONS and clicks >= MIN_CLICKS


@dataclass(frozen=True)
class VariantStats:
    variant: Variant
    impressions: int
    clicks: int  # impressions clicked at least once
    members: int  # members shown at least one entry
    ctr: float
    ci_low: float
    ci_high: float
    enough_data: bool
    vs_control: Comparison | None  # None for the control itself, or with no impressions


def variant_stats(*, experiment: Experiment) -> list[VariantStats]:
    """Per variant (id order; the first is the control), counted in one aggregate query."""
    variants = (
        Variant.objects.filter(experiment=experiment)
        .annotate(
            shown=Count("impressions"),
            clicked=Count("impressions", filter=Q(impressions__clicked_at__isnull=False)),
            reached=Count("impressions__member", distinct=True),
        )
        .order_by("id")
    )
    result: list[VariantStats] = []
    control: WithAnnotations[Variant, _Counted] | None = None
    for variant in variants:
        low, high = wilson_interval(successes=variant.clicked, trials=variant.shown)
        comparison = None
        if control is None:
            control = variant
        else:
            comparison = compare_proportions(
                control_successes=control.clicked,
                control_trials=control.shown,
                successes=variant.clicked,
                trials=variant.shown,
            )
        result.append(
            VariantStats(
                variant=variant,
                impressions=variant.shown,
                clicks=variant.clicked,
                members=variant.reached,
                ctr=variant.clicked / variant.shown if variant.shown else 0.0,
                ci_low=low,
                ci_high=high,
                enough_data=has_enough_data(impressions=variant.shown, clicks=variant.clicked),
                vs_control=comparison,
            )
        )
    return result


# --- The creator's verbs -------------------------------------------------------------------


def start_experiment(*, experiment: Experiment, actor: User | None = None) -> Experiment:
    """Start a draft with at least two variants, if no other experiment is running."""
    with transaction.atomic():
        locked = Experiment.objects.select_for_update().get(pk=experiment.pk)
        if locked.status != Experiment.Status.DRAFT:
            raise ExperimentError(
                _("Only a draft experiment can start; to test again, create a new one with a new key.")
            )
        if locked.variants.count() < 2:
            raise ExperimentError(_("An experiment needs at least two variants to start."))
        other = Experiment.objects.filter(status=Experiment.Status.RUNNING).exclude(pk=locked.pk).first()
        if other is not None:
            raise ExperimentError(
                _("“%(name)s” is running; stop it before starting another experiment.") % {"name": other}
            )
        locked.status = Experiment.Status.RUNNING
        locked.started_at = timezone.now()
        try:
            # The database allows one running experiment: a start racing this one fails here.
            with transaction.atomic():
                locked.save(update_fields=["status", "started_at"])
        except IntegrityError:
            raise ExperimentError(
                _("Another experiment started meanwhile; stop it before starting this one.")
            ) from None
        if actor is not None:
            audit.record(actor=actor, action="experiment.start", target=locked, details={"key": locked.key})
        experiments_changed()
    _copy_state(locked, experiment)
    return experiment


def stop_experiment(*, experiment: Experiment, actor: User | None = None) -> Experiment:
    """Stop a running experiment: members go back to the default lists; its results stay."""
    with transaction.atomic():
        locked = Experiment.objects.select_for_update().get(pk=experiment.pk)
        if locked.status != Experiment.Status.RUNNING:
            raise ExperimentError(_("Only a running experiment can be stopped."))
        _stop(locked)
        if actor is not None:
            audit.record(actor=actor, action="experiment.stop", target=locked)
        experiments_changed()
    _copy_state(locked, experiment)
    return experiment


def promote_variant(*, variant: Variant, actor: User | None = None) -> RecommendSettings:
    """Make a variant the default for every list: copy its algorithm and parameters into the
    settings, record it as the experiment's winner and stop the experiment if it runs."""
    with transaction.atomic():
        experiment = Experiment.objects.select_for_update().get(pk=variant.experiment_id)
        if experiment.status == Experiment.Status.DRAFT:
            raise ExperimentError(_("A draft experiment has no results to promote a variant from."))
        settings_row = RecommendSettings.current()
        before = {"algorithm": settings_row.algorithm, "params": settings_row.params}
        settings_row.algorithm = variant.algorithm
        settings_row.params = dict(variant.params or {})
        settings_row.save(update_fields=["algorithm", "params", "updated_at"])
        experiment.winner = variant
        was_running = experiment.status == Experiment.Status.RUNNING
        if was_running:
            _stop(experiment)
        experiment.save(update_fields=["winner"])
        if actor is not None:
            audit.record(
                actor=actor,
                action="experiment.promote",
                target=experiment,
                details={
                    "variant": variant.pk,
                    "variant_name": variant.name,
                    "stopped": was_running,
                    "changes": audit.diff(
                        before, {"algorithm": variant.algorithm, "params": settings_row.params}
                    ),
                },
            )
        experiments_changed()
    if Variant.experiment.is_cached(variant):
        _copy_state(experiment, variant.experiment)
    return settings_row


def _stop(experiment: Experiment) -> None:
    experiment.status = Experiment.Status.STOPPED
    experiment.stopped_at = timezone.now()
    experiment.save(update_fields=["status", "stopped_at"])


def _copy_state(source: Experiment, target: Experiment) -> None:
    # The caller's instance (the admin's, a test's) reflects what was saved.
    target.status, target.started_at = source.status, source.started_at
    target.stopped_at, target.winner_id = source.stopped_at, source.winner_id
