"""Members' views summed per item: the arithmetic (plain NumPy) and the nightly roll-up.

A view log row is one page view; most (member, item) pairs are viewed once, so the log is as
long as the pairs are many and reading it is what a nightly recommender build spends most of
its time on. `roll_up_views` sums the log, once it can no longer change, into one
`ViewHistory` row per member holding that member's pairs packed as an array of `PAIR`;
`content.selectors.view_pairs` reads those rows plus the few views since, and gives the same
sums as grouping the whole log would.

A view can change for `BEACON_MAX_AGE` after it starts (the page's beacon adds dwell time and
completion), so only views older than that are rolled up: a row summed is final.

`drop_old_views` then deletes raw rows older than `VIEW_LOG_RETENTION_DAYS` that the roll-up has
summed, counting them per item (`ViewArchive`) in the same transaction, so what is computed
from views (the sums, the items' statistics, the distinct readers from `readers_per_item`)
stays the same after they are gone.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
from django.conf import settings
from django.db import connections, router, transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from members import rows
from members.bulk import COPY_SIGNATURE, columns, copy_out, copy_supported, factorise, microseconds

from .models import ContentView, ViewArchive, ViewHistory, ViewRollup

# A page left open longer than this stops reporting (content.services signs beacons for it).
BEACON_MAX_AGE = 60 * 60 * 12

# One entry per item a member viewed: how often, for how long in all, whether a view ever
# finished it, and when the last one started (microseconds since the Unix epoch).
PAIR = np.dtype([("item", "<i8"), ("views", "<i4"), ("dwell", "<i8"), ("completed", "u1"), ("last", "<i8")])
SETTLED = timedelta(seconds=BEACON_MAX_AGE)
WRITE_BATCH = 2_000
# Raw views deleted per transaction by drop_old_views: short transactions and small id lists,
# however long the backlog the first run finds.
DROP_BATCH = 10_000
ARCHIVE_CHUNK = 500  # items per UPDATE of their archived counts


@dataclass(frozen=True)
class ViewPairs:
    """(member, item) pairs with their sums: `users[i]` viewed `pairs[i]["item"]`."""

    users: np.ndarray  # int64
    pairs: np.ndarray  # PAIR

    def __len__(self) -> int:
        return len(self.users)

    def where(self, mask: np.ndarray) -> ViewPairs:
        return ViewPairs(self.users[mask], self.pairs[mask])


def empty_pairs() -> ViewPairs:
    return ViewPairs(np.array([], dtype=np.int64), np.zeros(0, dtype=PAIR))


def group_views(
    *,
    users: np.ndarray,
    items: np.ndarray,
    views: np.ndarray,
    dwell: np.ndarray,
    completed: np.ndarray,
    last: np.ndarray,
) -> ViewPairs:
    """Sum rows that share a (member, item): views and dwell add up, completed if any row is,
    last is the latest. Sorted by member, then item. Integer arithmetic, so the order the rows
    come in does not change a bit of the result."""
    if not len(users):
        return empty_pairs()
    user_ids, user_codes = factorise(users)
    item_ids, item_codes = factorise(items)
    key = user_codes * len(item_ids) + item_codes
    order = np.argsort(key, kind="stable")
    key = key[order]
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    pairs = np.empty(len(starts), dtype=PAIR)
    pair_keys = key[starts]
    pairs["item"] = item_ids[pair_keys % len(item_ids)]
    pairs["views"] = np.add.reduceat(views[order], starts)
    pairs["dwell"] = np.add.reduceat(dwell[order], starts)
    pairs["completed"] = np.maximum.reduceat(completed[order], starts) > 0
    pairs["last"] = np.maximum.reduceat(last[order], starts)
    return ViewPairs(user_ids[pair_keys // len(item_ids)], pairs)


def merge(base: ViewPairs, extra: ViewPairs) -> ViewPairs:
    """`base` and `extra` summed as one (see group_views)."""
    if not len(extra):
        return base
    if not len(base):
        return extra
    users = np.concatenate([base.users, extra.users])
    pairs = np.concatenate([base.pairs, extra.pairs])
    return group_views(
        users=users,
        items=pairs["item"],
        views=pairs["views"].astype(np.int64),
        dwell=pairs["dwell"],
        completed=pairs["completed"],
        last=pairs["last"],
    )


def merge_sorted(base: ViewPairs, extra: ViewPairs) -> ViewPairs:
    """`merge(base, extra)`, the same pairs in the same order (by member, then item), for two
    sets of pairs each sorted that way with no pair twice, as ViewHistory rows read in member
    order and group_views' output are: `extra`'s pairs are summed into their match or inserted
    at their place (binary search), instead of sorting both again. Falls back to `merge` when
    either is not sorted."""
    if not len(extra) or not len(base):
        return merge(base, extra)
    span = int(max(base.pairs["item"].max(), extra.pairs["item"].max())) + 1
    keys = base.users * span + base.pairs["item"]
    extra_keys = extra.users * span + extra.pairs["item"]
    if (keys[1:] <= keys[:-1]).any() or (extra_keys[1:] <= extra_keys[:-1]).any():
        return merge(base, extra)
    at = np.searchsorted(keys, extra_keys)
    hit = np.zeros(len(extra), dtype=bool)
    inside = at < len(keys)
    hit[inside] = keys[at[inside]] == extra_keys[inside]
    pairs = base.pairs.copy()
    targets, new = at[hit], extra.pairs[hit]
    pairs["views"][targets] += new["views"]
    pairs["dwell"][targets] += new["dwell"]
    pairs["completed"][targets] |= new["completed"]
    pairs["last"][targets] = np.maximum(pairs["last"][targets], new["last"])
    if hit.all():
        return ViewPairs(base.users.copy(), pairs)
    # np.insert puts values given for the same index in the order given: ascending here.
    places = at[~hit]
    return ViewPairs(
        np.insert(base.users, places, extra.users[~hit]), np.insert(pairs, places, extra.pairs[~hit])
    )


def add_recent(base: ViewPairs, recent: ViewPairs) -> ViewPairs:
    """`merge(base, recent)` for a large `base` sorted by (member, item), as ViewHistory rows
    read in member order are, and a small `recent`: only the rows of members in `recent` are
    searched (binary search on their keys) instead of sorting everything again. The result is
    in no particular order."""
    if not len(recent) or not len(base):
        return merge(base, recent)
    in_recent = np.zeros(int(max(base.users.max(), recent.users.max())) + 1, dtype=bool)
    in_recent[recent.users] = True
    rows = np.flatnonzero(in_recent[base.users])  # ascending, so their keys are too
    span = int(max(base.pairs["item"].max(), recent.pairs["item"].max())) + 1
    keys = base.users[rows] * span + base.pairs["item"][rows]
    recent_keys = recent.users * span + recent.pairs["item"]
    hit = np.zeros(len(recent), dtype=bool)
    pairs = base.pairs
    if len(rows):
        at = np.minimum(np.searchsorted(keys, recent_keys), len(keys) - 1)
        hit = keys[at] == recent_keys
    if hit.any():
        pairs = pairs.copy()
        targets, new = rows[at[hit]], recent.pairs[hit]  # each recent pair is unique: no row twice
        pairs["views"][targets] += new["views"]
        pairs["dwell"][targets] += new["dwell"]
        pairs["completed"][targets] |= new["completed"]
        pairs["last"][targets] = np.maximum(pairs["last"][targets], new["last"])
    if hit.all():
        return ViewPairs(base.users, pairs)
    return ViewPairs(
        np.concatenate([base.users, recent.users[~hit]]), np.concatenate([pairs, recent.pairs[~hit]])
    )


def unpack(rows: list[tuple[int, bytes | memoryview]]) -> ViewPairs:
    """ViewHistory rows (user id, packed pairs) as pairs, in the order of `rows`."""
    if not rows:
        return empty_pairs()
    counts = np.fromiter((len(blob) // PAIR.itemsize for _, blob in rows), dtype=np.int64, count=len(rows))
    users = np.repeat(np.fromiter((user for user, _ in rows), dtype=np.int64, count=len(rows)), counts)
    return ViewPairs(users, np.frombuffer(b"".join(blob for _, blob in rows), dtype=PAIR))


def items_in(blob: bytes | memoryview) -> list[int]:
    """The items of one member's packed pairs (a ViewHistory row's `pairs`)."""
    return np.frombuffer(blob, dtype=PAIR)["item"].tolist()


# User ids per group in read_pairs: each group's pairs travel as one bytea, which holds at most
# 1 GB; 1,024 members with 10,000 items each are 297 MB.
_READ_GROUP_BITS = 10


def read_pairs(histories: QuerySet[ViewHistory]) -> ViewPairs:
    """The pairs of the ViewHistory rows of `histories`, in member order (ascending user id,
    whatever the queryset's order). On PostgreSQL (psycopg2) through one binary COPY in which
    the database concatenates the rows, a block of user ids at a time: per block one bytea of
    (user id, size) heads and one of the packed pairs, which NumPy reads in place, with no
    Python object per member (the ORM's path sends a bytea as hex text and decodes it again,
    several times slower for a hundred thousand rows)."""
    rows = histories.order_by().values_list("user_id", "pairs")
    if not copy_supported(connections[histories.db]):
        return unpack(sorted(rows, key=lambda row: row[0]))
    group = f"u >> {_READ_GROUP_BITS}"
    copied = copy_out(
        rows,
        select="string_agg(int8send(u::bigint) || int4send(length(p)), ''::bytea ORDER BY u), "
        "string_agg(p, ''::bytea ORDER BY u)",
        names=["u", "p"],
        rest=f"GROUP BY {group} ORDER BY {group}",
    )
    if copied is None:
        return empty_pairs()
    data, at = copied
    heads: list[memoryview] = []
    blobs: list[memoryview] = []
    while True:
        (fields,) = struct.unpack_from(">h", data, at)
        if fields == -1:
            break
        at += 2
        for parts in (heads, blobs):
            (size,) = struct.unpack_from(">i", data, at)
            parts.append(data[at + 4 : at + 4 + size])
            at += 4 + size
    if not heads:
        return empty_pairs()
    head = np.frombuffer(b"".join(heads), dtype=[("user", ">i8"), ("size", ">i4")])
    users = np.repeat(head["user"].astype(np.int64), head["size"] // PAIR.itemsize)
    return ViewPairs(users, np.frombuffer(b"".join(blobs), dtype=PAIR))


def pack(pairs: ViewPairs) -> list[tuple[int, bytes]]:
    """One (user id, packed pairs) per member of `pairs`, which must be sorted by member."""
    if not len(pairs):
        return []
    starts = np.flatnonzero(np.r_[True, pairs.users[1:] != pairs.users[:-1]])
    ends = np.r_[starts[1:], len(pairs)]
    data = pairs.pairs
    return [
        (user, data[start:end].tobytes())
        for user, start, end in zip(pairs.users[starts].tolist(), starts.tolist(), ends.tolist(), strict=True)
    ]


def raw_pairs(views: QuerySet[ContentView]) -> ViewPairs:
    """The members' views among `views` (a ContentView queryset) summed per pair."""
    users, items, dwell, completed, started = columns(
        views.filter(user__isnull=False)
        .values_list("user_id", "content_id", "dwell_seconds", "completed", "started_at")
        .order_by(),
        ("int", "int", "int", "bool", "time"),
    )
    return group_views(
        users=users,
        items=items,
        views=np.ones(len(users), dtype=np.int64),
        dwell=dwell,
        completed=completed,
        last=started,
    )


def member_raw_pairs(*, member_id: int, since: datetime, until: datetime) -> ViewPairs:
    """`raw_pairs` of one member's views started from `since` to `until`, as one plain
    statement: a member's views since the nightly roll-up are a handful, which the queryset
    and the COPY behind `raw_pairs` cost more to set up than to read (the home page asks after
    every read)."""
    connection = connections[router.db_for_read(ContentView)]
    item, dwell, completed, started, member = (
        rows.column(ContentView, name, connection)
        for name in ("content", "dwell_seconds", "completed", "started_at", "user")
    )
    adapt = connection.ops.adapt_datetimefield_value
    with connection.cursor() as cursor:
        cursor.execute(
            # Table and column names from the model; the member and the moments are parameters.
            f"SELECT {item}, {dwell}, {completed}, {started} FROM {rows.table(ContentView, connection)} "  # noqa: S608
            f"WHERE {member} = %s AND {started} >= %s AND {started} <= %s",
            [member_id, adapt(since), adapt(until)],
        )
        found = cursor.fetchall()
    count = len(found)
    return group_views(
        users=np.full(count, member_id, dtype=np.int64),
        items=np.fromiter((row[0] for row in found), dtype=np.int64, count=count),
        views=np.ones(count, dtype=np.int64),
        dwell=np.fromiter((row[1] for row in found), dtype=np.int64, count=count),
        completed=np.fromiter((bool(row[2]) for row in found), dtype=np.int64, count=count),
        last=np.fromiter(
            (
                microseconds(rows.value(ContentView, "started_at", row[3], connection=connection))
                for row in found
            ),
            dtype=np.int64,
            count=count,
        ),
    )


def write_histories(histories: list[tuple[int, bytes]]) -> None:
    """Store these members' packed pairs in place of what they had. On PostgreSQL (psycopg2)
    their rows are deleted and written again with one COPY: an upsert through bulk_create
    quotes every byte into the statement and costs seconds for a night's tens of thousands of
    members."""
    connection = connections[router.db_for_write(ViewHistory)]
    if not copy_supported(connection):
        ViewHistory.objects.bulk_create(
            (ViewHistory(user_id=user, pairs=blob) for user, blob in histories),
            batch_size=WRITE_BATCH,
            update_conflicts=True,
            unique_fields=["user"],
            update_fields=["pairs", "updated_at"],
        )
        return
    table = connection.ops.quote_name(ViewHistory._meta.db_table)
    # Binary COPY (see read_pairs): the bytes as they are, where the text format would send
    # each one as two hex digits for the server to decode. A timestamp is microseconds since
    # 2000-01-01 UTC.
    stamp = microseconds(timezone.now()) - microseconds(datetime(2000, 1, 1, tzinfo=UTC))
    rows = b"".join(
        struct.pack(">hiqi", 3, 8, user, len(blob)) + blob + struct.pack(">iq", 8, stamp)
        for user, blob in histories
    )
    payload = COPY_SIGNATURE + struct.pack(">ii", 0, 0) + rows + struct.pack(">h", -1)
    with connection.cursor() as cursor:
        # One array parameter rather than an IN list of tens of thousands.
        cursor.execute(f"DELETE FROM {table} WHERE user_id = ANY(%s)", [[user for user, _ in histories]])  # noqa: S608
        cursor.copy_expert(
            f"COPY {table} (user_id, pairs, updated_at) FROM STDIN (FORMAT binary)", io.BytesIO(payload)
        )


def roll_up_views(*, now: datetime | None = None) -> dict[str, int | str]:
    """Sum the views that can no longer change into ViewHistory and move the mark past them.
    Safe to re-run and to run twice at once: the mark is locked and moved in the transaction
    that writes the sums, so a view is summed exactly once."""
    until = (now or timezone.now()) - SETTLED
    with transaction.atomic():
        ViewRollup.objects.get_or_create(pk=1)
        mark = ViewRollup.objects.select_for_update().get(pk=1)
        since = mark.rolled_until
        if since is not None and until <= since:
            return {"members": 0, "views": 0, "rolled_until": since.isoformat()}
        window = ContentView.objects.filter(started_at__lt=until)
        if since is not None:
            window = window.filter(started_at__gte=since)
        new = raw_pairs(window)
        members = np.unique(new.users)
        before = read_pairs(
            ViewHistory.objects.filter(user_id__in=window.filter(user__isnull=False).values("user_id"))
        )
        write_histories(pack(merge_sorted(before, new)))
        mark.rolled_until = until
        mark.save(update_fields=["rolled_until"])
    return {
        "members": len(members),
        "views": int(new.pairs["views"].sum()),
        "rolled_until": until.isoformat(),
    }


def readers_per_item() -> dict[int, int]:
    """How many distinct members viewed each item, ever: the rolled-up pairs (ViewHistory, which
    keep the views the retention dropped) plus the members' views since the roll-up's mark.
    Visitors' views are no one's, so not readers. Items no member viewed are left out."""
    mark = ViewRollup.objects.filter(pk=1).values_list("rolled_until", flat=True).first()
    recent = ContentView.objects.all() if mark is None else ContentView.objects.filter(started_at__gte=mark)
    base = empty_pairs() if mark is None else read_pairs(ViewHistory.objects.all())
    pairs = add_recent(base, raw_pairs(recent))  # one entry per (member, item)
    items, counts = np.unique(pairs.pairs["item"], return_counts=True)
    return dict(zip(items.tolist(), counts.tolist(), strict=True))


def _archive(counts: dict[int, tuple[int, int]]) -> None:
    """Add (views, completed) to these items' ViewArchive rows, creating the missing ones. The
    counters grow with F() in the database, one UPDATE per distinct pair of numbers (most items
    of a batch share a few small ones) and chunk of items."""
    ViewArchive.objects.bulk_create(
        [ViewArchive(content_id=item) for item in counts], ignore_conflicts=True, batch_size=WRITE_BATCH
    )
    by_amount: dict[tuple[int, int], list[int]] = {}
    for item, amount in counts.items():
        by_amount.setdefault(amount, []).append(item)
    for (views, completed), items in by_amount.items():
        for start in range(0, len(items), ARCHIVE_CHUNK):
            ViewArchive.objects.filter(content_id__in=items[start : start + ARCHIVE_CHUNK]).update(
                views=F("views") + views, completed=F("completed") + completed, updated_at=timezone.now()
            )


def drop_old_views(
    *, now: datetime | None = None, batch_size: int = DROP_BATCH
) -> dict[str, int | str | None]:
    """Delete the raw views (members' and visitors') that started before both
    `now - VIEW_LOG_RETENTION_DAYS` and the roll-up's mark, so never one not yet summed into
    ViewHistory; each batch is counted per item into ViewArchive in the transaction that deletes
    it. Nothing with VIEW_LOG_RETENTION_DAYS = 0 or before the first roll-up. Safe to re-run
    (a second run finds nothing) and to stop half-way (each batch is whole or not at all); the
    roll-up's row is locked per batch, so two drops, or a drop and a roll-up, take turns."""
    days = settings.VIEW_LOG_RETENTION_DAYS
    now = now or timezone.now()
    mark = ViewRollup.objects.filter(pk=1).values_list("rolled_until", flat=True).first()
    if not days or mark is None:
        return {"views": 0, "batches": 0, "items": 0, "dropped_before": None}
    cutoff = min(now - timedelta(days=days), mark)
    dropped = batches = 0
    items: set[int] = set()
    while True:
        with transaction.atomic():
            state = ViewRollup.objects.select_for_update().get(pk=1)
            rows = list(
                ContentView.objects.filter(started_at__lt=cutoff)
                .order_by("started_at")  # the started_at index, read from its start: no sort
                .select_for_update()
                .values_list("pk", "content_id", "completed")[:batch_size]
            )
            if not rows:
                break
            counts: dict[int, tuple[int, int]] = {}
            for _pk, item, completed in rows:
                views, done = counts.get(item, (0, 0))
                counts[item] = (views + 1, done + completed)
            _archive(counts)
            deleted, _ = ContentView.objects.filter(pk__in=[pk for pk, _item, _done in rows]).delete()
            if deleted != len(rows):  # locked above, so only if the database ignored the lock
                raise RuntimeError(f"{len(rows)} views counted but {deleted} deleted; nothing kept")
            if state.dropped_before is None or state.dropped_before < cutoff:
                state.dropped_before = cutoff
                state.save(update_fields=["dropped_before"])
        dropped += deleted
        batches += 1
        items.update(counts)
    return {"views": dropped, "batches": batches, "items": len(items), "dropped_before": cutoff.isoformat()}
