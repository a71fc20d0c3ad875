"""The build's similar-text stage around recommend.text_index: read every item's text and the
current build's text state in bulk, decide tonight's mode (full fit, incremental or copied),
compute, and write the rows and the state for the new build.

`plan_text_stage` reads (before the build's transaction), `compute_text_stage` computes without
the database, so the build runs it in a thread beside its own reads, and `write_text_stage`
writes inside the build's transaction, so the text rows and the state swap in with the rest.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import numpy as np
from django.conf import settings
from django.db import connections, router

from members.bulk import COPY_SIGNATURE, copy_out, copy_supported, microseconds
from usergroup.typed import column_of

from .content_based import Vectoriser
from .models import NeighbourBuild, TextIndex
from .tables import copy_neighbours, text_corpus, write_neighbours
from .text_index import (
    VECTORISER,
    Changes,
    Fit,
    Mode,
    TextState,
    full_text_state,
    pack_state,
    pack_vocabulary,
    text_changes,
    text_digests,
    text_stage_mode,
    unpack_arrays,
    unpack_state,
    update_text_state,
)

SOURCE = "text"


@dataclass(frozen=True)
class Computed:
    """A computed text stage: the new state, its vectoriser (and its packed terms when they were
    read rather than fitted) and the fit it belongs to; the positions of the rows to write
    (None: all) and how many unchanged items' lists were computed again."""

    state: TextState
    vectoriser: Vectoriser
    fit: Fit
    vocabulary: bytes | None = None
    rewritten: np.ndarray | None = None
    recomputed: int = 0
    tokenised: int = 0


@dataclass(frozen=True)
class TextStage:
    """Tonight's text stage, waiting to be written: its mode and why, the changes since the
    current build (None without a state to compare with), the build whose rows are copied
    (all of them, or all but the rewritten ones) and what was computed (None: copied)."""

    mode: str
    reason: str
    items: int
    changes: Changes | None
    fit: Fit
    source: NeighbourBuild | None
    computed: Computed | None


@dataclass(frozen=True)
class TextPlan:
    """Tonight's text stage as read from the database, before anything is computed: the mode
    and why, the items' ids, texts and digests (ids ascending), the changes since the current
    build (None without a state to compare with), the fit, the current build, and, on an
    incremental night or a full fit with the same tokenizer, its stored vectoriser, state and
    packed terms."""

    mode: str
    reason: str
    k: int
    now: datetime
    item_ids: np.ndarray
    texts: list[str]
    digests: np.ndarray
    changes: Changes | None
    fit: Fit | None
    source: NeighbourBuild | None
    before: tuple[Vectoriser, TextState] | None = None
    vocabulary: bytes | None = None


def plan_text_stage(*, current: NeighbourBuild | None, k: int, now: datetime) -> TextPlan:
    """Read the texts and the current build's state, and decide tonight's mode. All the
    stage's reads; `compute_text_stage` then needs no database."""
    corpus = text_corpus()
    digests = text_digests(corpus.texts)
    n = len(corpus.item_ids)
    index = (
        TextIndex.objects.filter(build=current).defer("vocabulary", "arrays").first()
        if current is not None
        else None
    )
    plan = TextPlan(
        mode=Mode.FULL,
        reason="no earlier fit",
        k=k,
        now=now,
        item_ids=corpus.item_ids,
        texts=corpus.texts,
        digests=digests,
        changes=None,
        fit=None,
        source=current,
    )
    if index is None:
        return plan
    fit = Fit(
        k=index.k,
        vectoriser=index.vectoriser,
        fitted_at=index.fitted_at,
        changed_since=index.changed_since_fit,
    )
    before = unpack_arrays(index.items)
    changes = text_changes(
        before_ids=before["item_ids"],
        before_digests=before["digests"],
        item_ids=corpus.item_ids,
        digests=digests,
    )
    mode, reason = text_stage_mode(
        fit=fit,
        k=k,
        now=now,
        refit_days=settings.RECOMMEND_TEXT_REFIT_DAYS,
        refit_share=settings.RECOMMEND_TEXT_REFIT_SHARE,
        changes=changes.total,
        items=n,
    )
    plan = replace(plan, mode=mode, reason=reason, changes=changes, fit=fit)
    # A full fit keeps the counts of the unchanged items when the tokenizer is the same one.
    if mode == Mode.COPIED or (mode == Mode.FULL and fit.vectoriser != VECTORISER):
        return plan
    vocabulary, arrays = read_text_arrays(index)
    return replace(plan, before=unpack_state(index.items, arrays, vocabulary), vocabulary=vocabulary)


def compute_text_stage(plan: TextPlan) -> TextStage:
    """Compute what tonight's mode needs: a full fit, the changed items merged in, or nothing
    (the rows are copied). No database: the build runs it beside its own reads."""
    n = len(plan.item_ids)
    if plan.mode == Mode.COPIED:
        if plan.fit is None:
            raise ValueError("a copied text stage needs the fit it keeps")
        return TextStage(
            mode=plan.mode,
            reason=plan.reason,
            items=n,
            changes=plan.changes,
            fit=plan.fit,
            source=plan.source,
            computed=None,
        )
    if plan.mode == Mode.FULL:
        before = (plan.before[0], plan.before[1], plan.changes) if plan.before and plan.changes else None
        vectoriser, state, tokenised = full_text_state(
            item_ids=plan.item_ids, texts=plan.texts, digests=plan.digests, k=plan.k, before=before
        )
        fit = Fit(k=plan.k, vectoriser=VECTORISER, fitted_at=plan.now, changed_since=0)
        return TextStage(
            mode=plan.mode,
            reason=plan.reason,
            items=n,
            changes=plan.changes,
            fit=fit,
            source=None,
            computed=Computed(state=state, vectoriser=vectoriser, fit=fit, tokenised=tokenised),
        )
    if plan.before is None or plan.changes is None or plan.fit is None:
        raise ValueError("an incremental text stage needs the last state and the changes since")
    vectoriser, before_state = plan.before
    update = update_text_state(
        before=before_state,
        vectoriser=vectoriser,
        item_ids=plan.item_ids,
        texts=plan.texts,
        digests=plan.digests,
        changes=plan.changes,
        k=plan.k,
    )
    fit = Fit(
        k=plan.k,
        vectoriser=VECTORISER,
        fitted_at=plan.fit.fitted_at,
        changed_since=plan.fit.changed_since + plan.changes.total,
    )
    return TextStage(
        mode=plan.mode,
        reason=plan.reason,
        items=n,
        changes=plan.changes,
        fit=fit,
        source=plan.source,
        computed=Computed(
            state=update.state,
            vectoriser=vectoriser,
            fit=fit,
            vocabulary=plan.vocabulary,
            rewritten=update.rewritten,
            recomputed=update.recomputed,
            tokenised=len(plan.changes.fresh),
        ),
    )


def read_text_arrays(index: TextIndex) -> tuple[bytes, bytes | memoryview]:
    """The index's vocabulary and arrays. On PostgreSQL (psycopg2) through one binary COPY:
    the ORM's path sends a bytea as hex text and decodes it again, a few times slower for the
    megabytes of an index."""
    rows = TextIndex.objects.filter(pk=index.pk).values_list("vocabulary", "arrays")
    if not copy_supported(connections[rows.db]):
        vocabulary, arrays = rows.get()
        return bytes(vocabulary), arrays
    copied = copy_out(rows, select="v, a", names=["v", "a"])
    if copied is None:
        raise TextIndex.DoesNotExist
    data, at = copied
    blobs = []
    (fields,) = struct.unpack_from(">h", data, at)
    if fields != 2:
        raise TextIndex.DoesNotExist
    at += 2
    for _ in range(fields):
        (size,) = struct.unpack_from(">i", data, at)
        blobs.append(data[at + 4 : at + 4 + size])
        at += 4 + size
    return bytes(blobs[0]), blobs[1]


def write_text_index(
    *, build: NeighbourBuild, fit: Fit, items: bytes, vocabulary: bytes, arrays: bytes
) -> None:
    """Store a build's text state. On PostgreSQL (psycopg2) with one binary COPY, the bytes as
    they are (see read_text_arrays)."""
    connection = connections[router.db_for_write(TextIndex)]
    if not copy_supported(connection):
        TextIndex.objects.create(
            build=build,
            fitted_at=fit.fitted_at,
            k=fit.k,
            vectoriser=fit.vectoriser,
            changed_since_fit=fit.changed_since,
            items=items,
            vocabulary=vocabulary,
            arrays=arrays,
        )
        return
    meta = TextIndex._meta
    names = ["build", "fitted_at", "k", "vectoriser", "changed_since_fit", "items", "vocabulary", "arrays"]
    # Binary COPY fields: bigint, timestamptz (microseconds since 2000-01-01 UTC), smallint,
    # varchar (UTF-8), integer, then three bytea as they are.
    fields = [
        struct.pack(">q", build.pk),
        struct.pack(">q", microseconds(fit.fitted_at) - microseconds(datetime(2000, 1, 1, tzinfo=UTC))),
        struct.pack(">h", fit.k),
        fit.vectoriser.encode(),
        struct.pack(">i", fit.changed_since),
        items,
        vocabulary,
        arrays,
    ]
    payload = b"".join(
        [
            COPY_SIGNATURE,
            struct.pack(">iih", 0, 0, len(fields)),
            *(struct.pack(">i", len(field)) + field for field in fields),
            struct.pack(">h", -1),
        ]
    )
    quote = connection.ops.quote_name
    columns = ", ".join(quote(column_of(TextIndex, name)) for name in names)
    with connection.cursor() as cursor:
        cursor.copy_expert(
            f"COPY {quote(meta.db_table)} ({columns}) FROM STDIN (FORMAT binary)", io.BytesIO(payload)
        )


def write_text_stage(*, build: NeighbourBuild, stage: TextStage) -> dict[str, object]:
    """Write tonight's text rows and state for `build`; returns what the build records of the
    stage (its params["text"])."""
    written = copied = 0
    computed = stage.computed
    if computed is None:
        if stage.source is None:
            raise ValueError("a copied text stage needs the build to copy from")
        copied = copy_neighbours(build=build, source_build=stage.source, source=SOURCE)
        # The state moves to the new build as it is: PostgreSQL keeps an UPDATE's unchanged
        # large values where they are, so nothing is written again.
        TextIndex.objects.filter(build=stage.source).update(build=build)
    else:
        state = computed.state
        if stage.source is not None and computed.rewritten is not None:
            # Every other row is the current build's, to the byte: copied in the database.
            copied = copy_neighbours(
                build=build,
                source_build=stage.source,
                source=SOURCE,
                except_items=state.item_ids[computed.rewritten].tolist(),
            )
        written = write_neighbours(
            build=build,
            item_ids=state.item_ids,
            neighbours=state.neighbours(computed.fit.k),
            source=SOURCE,
            rows=computed.rewritten,
        )
        items, arrays = pack_state(state, computed.vectoriser)
        write_text_index(
            build=build,
            fit=computed.fit,
            items=items,
            vocabulary=computed.vocabulary or pack_vocabulary(computed.vectoriser),
            arrays=arrays,
        )
    changes = stage.changes
    return {
        "mode": stage.mode,
        "reason": stage.reason,
        "items": stage.items,
        "changed": changes.changed if changes else None,
        "added": changes.added if changes else None,
        "removed": changes.removed if changes else None,
        "rows_written": written,
        "rows_copied": copied,
        "rows_recomputed": computed.recomputed if computed else 0,
        "texts_tokenised": computed.tokenised if computed else 0,
        "fitted_at": stage.fit.fitted_at.isoformat(),
        "changed_since_fit": stage.fit.changed_since,
    }
