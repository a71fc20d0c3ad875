"""The point rules and levels, cached per process, and the member's local day.

Reads only: the engine (services), the pages (selectors, views) and the middleware ask here, so
none of them depends on another for the rules."""

import time
import zoneinfo
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from members.models import User

from .models import Level, PointsRule

RULES_VERSION_KEY = "points:rules-version"
_RULES_TTL = 30  # seconds a process trusts its copy of the rules without asking the cache
_rules_cache: dict = {"version": None, "checked": 0.0, "rules": {}, "levels": []}

RuleWithMultipliers = tuple[PointsRule, dict[int, Decimal]]


def rules_changed() -> None:
    """Call after editing rules or levels (the admin does): this process reloads them at once,
    the others within _RULES_TTL seconds (they compare a version kept in the shared cache)."""
    cache.set(RULES_VERSION_KEY, time.time_ns(), None)
    _rules_cache["version"] = None


def forget_cached_levels() -> None:
    """Make the next read take the current rules and thresholds from the database."""
    _rules_cache["version"] = None


def _snapshot() -> dict:
    now = time.monotonic()
    if now - _rules_cache["checked"] > _RULES_TTL or _rules_cache["version"] is None:
        version = cache.get(RULES_VERSION_KEY, 0)
        if version != _rules_cache["version"]:
            rules: dict[str, list[RuleWithMultipliers]] = {}
            for rule in PointsRule.objects.filter(enabled=True).prefetch_related("multipliers__tier"):
                multipliers = {m.tier.rank: m.multiplier for m in rule.multipliers.all()}
                rules.setdefault(rule.action, []).append((rule, multipliers))
            _rules_cache.update(
                rules=rules, levels=list(Level.objects.order_by("threshold")), version=version
            )
        _rules_cache["checked"] = now
    return _rules_cache


def active_rule(*, action: str, now: datetime) -> RuleWithMultipliers | None:
    candidates = [(r, m) for r, m in _snapshot()["rules"].get(action, []) if r.is_active(now)]
    # A time-limited campaign rule wins over the standing one.
    candidates.sort(key=lambda rm: (rm[0].active_from is not None, rm[0].active_from or now), reverse=True)
    return candidates[0] if candidates else None


def levels() -> list[Level]:
    """Every level, lowest threshold first."""
    return _snapshot()["levels"]


def level_for(*, lifetime: int) -> Level | None:
    reached = [level for level in levels() if level.threshold <= lifetime]
    return reached[-1] if reached else None


def next_level(*, lifetime: int) -> Level | None:
    return next((level for level in levels() if level.threshold > lifetime), None)


def local_midnight(*, member: User, now: datetime) -> datetime:
    tz = zoneinfo.ZoneInfo(getattr(member, "time_zone", "") or settings.TIME_ZONE)
    local = now.astimezone(tz)
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


def local_date(*, member: User, now: datetime | None = None) -> str:
    return local_midnight(member=member, now=now or timezone.now()).date().isoformat()
