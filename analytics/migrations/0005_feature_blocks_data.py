"""MemberFeatures in blocks (2/3): each earlier run's per-member JSON rows become blocks."""

import io
import zlib

import numpy as np
from django.db import migrations

BLOCK = 2_000
# The feature columns when blocks were introduced (analytics.features.FEATURES then): runs
# stored with exactly these names keep this order, so they load back as today's matrix.
FEATURES = (
    "recency_days", "active_days_30", "active_days_90", "views_7", "views_30", "views_90",
    "views_prev_30", "views_all", "dwell_30", "dwell_90", "completed_views_90", "lessons_completed",
    "likes", "bookmarks", "comments_90", "comments_all", "posts_90", "posts_all", "accepted_answers",
    "votes_received", "events_attended", "points_30", "points_all", "tenure_days", "tier_rank",
    "paying", "renewals", "failed_payments", "cancel_scheduled", "revenue", "trend",
    "completion_rate_90",
)  # fmt: skip


def _pack(array):
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return zlib.compress(buffer.getvalue(), 1)


def _unpack(data):
    return np.load(io.BytesIO(zlib.decompress(data)), allow_pickle=False)


def _blocks(rows):
    """(names, member ids, values) per block of BLOCK consecutive (member_id, features) rows."""
    names, ids, values = None, [], []
    for member_id, features in rows:
        if names is None:
            names = FEATURES if set(features) == set(FEATURES) else tuple(sorted(features))
        ids.append(member_id)
        values.append([float(features.get(name, 0.0)) for name in names])
        if len(ids) == BLOCK:
            yield names, ids, values
            ids, values = [], []
    if ids:
        yield names, ids, values


def to_blocks(apps, schema_editor):
    MemberFeatures = apps.get_model("analytics", "MemberFeatures")
    old = MemberFeatures.objects.filter(member__isnull=False)
    for run_id in list(old.values_list("run_id", flat=True).distinct().order_by()):
        rows = old.filter(run_id=run_id).order_by("member_id").values_list("member_id", "old_values")
        for names, ids, values in _blocks(rows.iterator(chunk_size=BLOCK)):
            MemberFeatures.objects.create(
                run_id=run_id,
                first_member_id=ids[0],
                last_member_id=ids[-1],
                names=list(names),
                member_ids=_pack(np.array(ids, dtype="<i8")),
                values=_pack(np.array(values, dtype="<f8").reshape(len(ids), len(names))),
            )
        old.filter(run_id=run_id).delete()


def to_rows(apps, schema_editor):
    MemberFeatures = apps.get_model("analytics", "MemberFeatures")
    for block in MemberFeatures.objects.filter(member__isnull=True).iterator(chunk_size=10):
        ids, values = _unpack(block.member_ids), _unpack(block.values)
        MemberFeatures.objects.bulk_create(
            MemberFeatures(
                run_id=block.run_id,
                member_id=int(member_id),
                old_values={name: round(float(v), 4) for name, v in zip(block.names, row, strict=True)},
            )
            for member_id, row in zip(ids, values, strict=True)
        )
        block.delete()


class Migration(migrations.Migration):
    dependencies = [("analytics", "0004_feature_blocks")]

    operations = [migrations.RunPython(to_blocks, to_rows)]
