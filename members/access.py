"""The access policy: the one place that decides who may see what.

A gated object (content, forum category, event, ...) names the minimum tier it needs
through a nullable foreign key to Tier, `min_tier` by default (the model may set
`access_tier_field` to use another name):

- no tier: public, anyone may see it;
- the free tier (rank 0): any signed-in member;
- a paid tier: members whose live membership is of that rank or higher.

Expiry is checked here, on every access, with the membership's own dates: nothing waits
for the nightly job. Staff (the creator) see everything.
"""

from decimal import Decimal

from django.db import connection
from django.db.models import Q, QuerySet
from django.utils import timezone

from . import rows
from .models import LIVE_STATUSES, Interval, Membership, Tier

_RANK_CACHE = "_access_rank_cache"


def member_rank(user, now=None) -> int | None:
    """The tier rank a user holds now: None for visitors, 0 for free members."""
    if user is None or not user.is_authenticated:
        return None
    if now is None and hasattr(user, _RANK_CACHE):
        return getattr(user, _RANK_CACHE)
    moment = now or timezone.now()
    rank = 0
    for membership in _live_memberships([user.pk]):
        if membership.grants_access(moment):
            rank = max(rank, membership.tier.rank)
    if now is None:
        setattr(user, _RANK_CACHE, rank)  # one query per request, however many checks
    return rank


def prime_ranks(users) -> None:
    """Read the rank of each of `users` (signed-in members) now, in one query, and keep it on
    each as `member_rank` keeps its own: for code that checks access for many members at once
    (who may hear about a reply), where one query per member was the cost. The same rule as
    `member_rank`: the highest rank of the memberships that grant access now, else 0."""
    pending = {user.pk: user for user in users if user is not None and user.is_authenticated}
    pending = {pk: user for pk, user in pending.items() if not hasattr(user, _RANK_CACHE)}
    if not pending:
        return
    moment = timezone.now()
    ranks = dict.fromkeys(pending, 0)
    for membership in _live_memberships(list(pending)):
        if membership.grants_access(moment):
            ranks[membership.user_id] = max(ranks[membership.user_id], membership.tier.rank)
    for pk, user in pending.items():
        setattr(user, _RANK_CACHE, ranks[pk])


def _live_memberships(user_ids: list[int]) -> list[Membership]:
    """The memberships of these users in a live status, each with its tier: one plain statement
    (members.rows), the query of `Membership.objects.filter(user_id__in=user_ids,
    status__in=LIVE_STATUSES).select_related("tier")`, which every member's page asks once (the
    ORM took ten times longer to build it than the database to answer). Whether each grants
    access is the caller's question, answered from the membership's own dates."""
    q = connection.ops.quote_name
    users, statuses = ", ".join(["%s"] * len(user_ids)), ", ".join(["%s"] * len(LIVE_STATUSES))
    with connection.cursor() as cursor:
        cursor.execute(
            # Table and column names from the models; the values are parameters.
            f"SELECT {rows.columns(Membership, 'm')}, {rows.columns(Tier, 't')} "  # noqa: S608
            f"FROM {rows.table(Membership)} m INNER JOIN {rows.table(Tier)} t ON t.{q('id')} = m.{q('tier_id')} "
            f"WHERE m.{q('user_id')} IN ({users}) AND m.{q('status')} IN ({statuses})",
            [*user_ids, *LIVE_STATUSES],
        )
        found = cursor.fetchall()
    memberships = []
    for row in found:
        membership, at = rows.instance(Membership, row, 0)
        tier, _ = rows.instance(Tier, row, at)
        assert membership is not None and tier is not None  # noqa: S101 - inner join, primary keys
        membership.tier = tier
        memberships.append(membership)
    return memberships


def forget_rank(user) -> None:
    """Drop the cached rank after a membership change within the same request."""
    if user is not None and hasattr(user, _RANK_CACHE):
        delattr(user, _RANK_CACHE)


def current_tier(user, now=None) -> Tier | None:
    """The tier a user enjoys now (the free tier for members without a live membership)."""
    rank = member_rank(user, now)
    if rank is None:
        return None
    return Tier.objects.filter(rank=rank).first()


def _tier_field(model) -> str:
    return getattr(model, "access_tier_field", "min_tier")


def required_rank(obj) -> int | None:
    tier = getattr(obj, _tier_field(type(obj)))
    return None if tier is None else tier.rank


def can_access(user, obj, now=None) -> bool:
    """May `user` see the gated parts (body, file, link, ...) of `obj`?"""
    return rank_allows(user, required_rank(obj), now)


def rank_allows(user, needed: int | None, now=None) -> bool:
    """`can_access` for an object whose tier's rank (`needed`: None for no tier) was read without
    the object, by a statement written out (members.rows)."""
    if needed is None:
        return True
    if user is None or not user.is_authenticated:
        return False
    if user.is_staff or needed <= 0:  # the free tier: every member holds rank 0 at least, no query
        return True
    return (member_rank(user, now) or 0) >= needed


def access_condition(model, user, now=None) -> Q | None:
    """The filter on `model`'s rows whose gated parts `user` may see (what `accessible` applies),
    for queries that combine it with other conditions; None when `user` may see every row."""
    field = _tier_field(model)
    public = Q(**{f"{field}__isnull": True})
    if user is None or not user.is_authenticated:
        return public
    if user.is_staff:
        return None
    rank = member_rank(user, now) or 0
    return public | Q(**{f"{field}__rank__lte": rank})


def accessible(queryset: QuerySet, user, now=None) -> QuerySet:
    """Only the rows of `queryset` whose gated parts `user` may see."""
    condition = access_condition(queryset.model, user, now)
    return queryset if condition is None else queryset.filter(condition)


def access_sql(model, user, *, row: str, tier: str, now=None) -> tuple[str, list[int]]:
    """`access_condition` for a statement written out (members.rows): the condition, with its
    parameters, that `user` may see the gated parts of the `model` row aliased `row`, whose tier
    is joined (LEFT OUTER) as `tier`. ("", []) when `user` may see every row."""
    quote = connection.ops.quote_name
    tier_column = model._meta.get_field(_tier_field(model)).column
    public = f"{row}.{quote(tier_column)} IS NULL"
    if user is None or not user.is_authenticated:
        return public, []
    if user.is_staff:
        return "", []
    return f"({public} OR {tier}.{quote('rank')} <= %s)", [member_rank(user, now) or 0]


def access_key(user) -> str:
    """Everything that decides what `user` may see now, as a short string for cache keys: a
    cached list may be shared by every user with the same key, and by no one else."""
    if user is None or not user.is_authenticated:
        return "visitor"
    if user.is_staff:
        return "staff"
    return f"rank:{member_rank(user) or 0}"


def cheapest_tier_unlocking(obj) -> Tier | None:
    """The tier to name in an upgrade prompt: the cheapest on-sale tier that unlocks `obj`."""
    needed = required_rank(obj)
    if needed is None:
        return None
    tiers = Tier.objects.filter(rank__gte=needed, is_active=True).order_by("rank")
    return min(tiers, key=lambda tier: (_monthly_cost(tier), tier.rank), default=None)


def _monthly_cost(tier: Tier) -> Decimal:
    """What a tier costs a month as sold (after its sale); a yearly-only tier counts a twelfth."""
    if tier.offers(Interval.MONTH) or tier.is_free:
        return tier.price(Interval.MONTH)
    return tier.price(Interval.YEAR) / 12
