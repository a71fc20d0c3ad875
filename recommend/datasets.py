"""Interaction events for the offline evaluation: from this site's database, or from a CSV file
(`user,item,weight,timestamp`) so the engine can be checked on public datasets."""

from __future__ import annotations

import csv
import math
from datetime import datetime
from pathlib import Path

import numpy as np

from community.models import Comment
from content.models import Bookmark, ContentView, LessonProgress, Like
from members.models import User

from .evaluation import Events
from .interactions import DEFAULT_WEIGHTS, Weights
from .tables import text_corpus

HEADER = ["user", "item", "weight", "timestamp"]
MAX_ROWS = 50_000_000


class DatasetError(ValueError):
    """A file that cannot be read as interactions; the message names the line."""


def _indexed(values: list, known: dict) -> np.ndarray:
    return np.array([known.setdefault(v, len(known)) for v in values], dtype=np.int64)


def events_from_csv(path: Path) -> tuple[Events, None]:
    users: list[str] = []
    items: list[str] = []
    weights: list[float] = []
    times: list[float] = []
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise DatasetError(f"cannot open {path}: {exc.strerror}") from exc
    with handle:
        reader = csv.reader(handle)
        try:
            header = next(reader, None)
            if header is None or [h.strip().lower() for h in header] != HEADER:
                raise DatasetError(f"line 1: the header must be {','.join(HEADER)}")
            for row in reader:
                line = reader.line_num
                if not row:
                    continue
                if len(row) != 4:
                    raise DatasetError(f"line {line}: expected 4 values, found {len(row)}")
                user, item, weight_text, stamp = (value.strip() for value in row)
                if not user or not item:
                    raise DatasetError(f"line {line}: user and item must not be empty")
                try:
                    weight = float(weight_text)
                except ValueError:
                    raise DatasetError(f"line {line}: weight {weight_text!r} is not a number") from None
                if not math.isfinite(weight) or weight < 0:
                    raise DatasetError(f"line {line}: weight must be a finite number, 0 or more")
                users.append(user)
                items.append(item)
                weights.append(weight)
                times.append(_moment(stamp, line))
                if len(users) > MAX_ROWS:
                    raise DatasetError(f"line {line}: more than {MAX_ROWS:,} interactions")
        except UnicodeDecodeError as exc:
            raise DatasetError(f"the file is not UTF-8 text (near byte {exc.start})") from exc
        except csv.Error as exc:
            raise DatasetError(f"line {reader.line_num}: {exc}") from exc
    if not users:
        raise DatasetError("the file has no interactions")
    user_ids: dict = {}
    item_ids: dict = {}
    events = Events(
        users=_indexed(users, user_ids),
        items=_indexed(items, item_ids),
        weights=np.array(weights, dtype=np.float32),
        times=np.array(times, dtype=np.float64),
        n_users=len(user_ids),
        n_items=len(item_ids),
    )
    return events, None


def _moment(text: str, line: int) -> float:
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise DatasetError(f"line {line}: timestamp {text!r} is neither a number nor an ISO date") from None


def events_from_database(*, weights: Weights = DEFAULT_WEIGHTS) -> tuple[Events, list[str]]:
    """Every interaction of members who allowed personalisation, one event per row, and each
    item's text (title, tags, summary, body: recommend.tables.text_corpus) for the content-based model.
    Views are the raw log's rows, each with its time: those kept (VIEW_LOG_RETENTION_DAYS), not
    the ones the retention dropped, whose per-member sums have no times to split on."""
    members = User.objects.filter(is_active=True, personalisation_consent=True).values("pk")
    rows: list[tuple[int, int, float, datetime]] = []
    for user, item, dwell, completed, at in (
        ContentView.objects.filter(user__in=members)
        .values_list("user_id", "content_id", "dwell_seconds", "completed", "started_at")
        .iterator(chunk_size=10_000)
    ):
        value = (
            weights.view + weights.minutes * math.log1p(dwell / 60) + (weights.completed if completed else 0)
        )
        rows.append((user, item, value, at))
    for model, weight in ((Like, weights.like), (Bookmark, weights.bookmark)):
        rows += [
            (u, i, weight, at)
            for u, i, at in model.objects.filter(user__in=members).values_list(
                "user_id", "content_id", "created_at"
            )
        ]
    rows += [
        (u, i, weights.comment, at)
        for u, i, at in Comment.objects.filter(author__in=members, hidden=False).values_list(
            "author_id", "content_id", "created_at"
        )
    ]
    rows += [
        (u, i, weights.lessons, at)
        for u, i, at in LessonProgress.objects.filter(user__in=members).values_list(
            "user_id", "lesson__course_id", "completed_at"
        )
    ]
    corpus = text_corpus()
    items = corpus.item_ids.tolist()
    item_index = {pk: n for n, pk in enumerate(items)}
    user_ids: dict = {}
    events = Events(
        users=_indexed([r[0] for r in rows], user_ids),
        items=np.array([item_index[r[1]] for r in rows], dtype=np.int64),
        weights=np.array([r[2] for r in rows], dtype=np.float32),
        times=np.array([r[3].timestamp() for r in rows], dtype=np.float64),
        n_users=len(user_ids),
        n_items=len(items),
    )
    return events, corpus.texts
