"""Fixed-window counters in the cache, for limits that need no database row."""

import time

from django.core.cache import cache


def over_limit(key: str, *, limit: int, window: int = 60) -> bool:
    """Count one hit for `key` in the current window of `window` seconds; True once the hits
    in this window exceed `limit`. The counter is shared by every process through the cache."""
    bucket = f"ratelimit:{key}:{int(time.time()) // window}"
    cache.add(bucket, 0, window + 5)
    try:
        hits = cache.incr(bucket)
    except ValueError:  # the bucket expired between add and incr
        cache.add(bucket, 1, window + 5)
        hits = 1
    return hits > limit
