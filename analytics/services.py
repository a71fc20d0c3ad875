"""The nightly member-profile run: features → score → personas → churn → lists → one write.

Everything is computed in memory on arrays first; the results are then written in one
transaction that replaces any earlier run of the same day, so a run is idempotent and a
failure leaves the previous results in place.
"""

import io
import itertools
import json
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from decimal import Decimal

import numpy as np
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Max, QuerySet
from django.utils import timezone
from modeltranslation.utils import build_localized_fieldname, get_translation_fields
from threadpoolctl import threadpool_limits

from members import audit
from members.models import Tier, User
from usergroup.typed import column_of

from . import churn, personas, scoring
from .choices_version import forget_directory_choices
from .features import FEATURES, INDEX, FeatureMatrix, compute_features, features_at, id_set, paying_over
from .models import DEFAULT_WEIGHTS, MemberFeatures, MemberProfile, Persona, PersonaRun, ScoreWeights

WRITE_BATCH = 2000
COPY_CHUNK = 5000  # profiles formatted per piece of the COPY stream
# Threads for NumPy and scikit-learn (BLAS, OpenMP) during the run. One: on a small machine
# that also runs the database and the site, OpenMP threads spin waiting for each other
# whenever another process holds a core. On this project's 2-core machine, KMeans over 90,000
# members took 0.8 s on one thread against 1.5 s on two when the machine was otherwise idle,
# and 2-6 times longer on two threads when it was busy; the database gets the other core.
NUMERIC_THREADS = 1
TOP_SHARE = 0.25  # "high score": the top quarter of the community
RISING, FALLING = 0.0, -0.25


class AnalyticsError(ValueError):
    """A run that cannot start: a date in the future, weights that make no score, ..."""


def eligible_members(*, at: datetime) -> "QuerySet[User]":
    """Members the run profiles: active, not staff, joined by then, and consenting."""
    return User.objects.filter(is_active=True, is_staff=False, date_joined__lt=at, analytics_consent=True)


def _moment(as_of: date | None) -> tuple[date, datetime]:
    today = timezone.localdate()
    if as_of is None or as_of == today:
        return today, timezone.now()
    if as_of > today:
        raise AnalyticsError(
            f"{as_of:%Y-%m-%d} is in the future; the latest day is today ({today:%Y-%m-%d})."
        )
    end = datetime.combine(as_of + timedelta(days=1), datetime.min.time())
    return as_of, timezone.make_aware(end)


class _Stages:
    """Times each stage and reports progress (a callable taking the stage name)."""

    def __init__(self, progress: Callable[[str], None] | None) -> None:
        self.durations: dict[str, float] = {}
        self.progress = progress

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        yield
        self.durations[name] = round(time.perf_counter() - started, 3)
        if self.progress is not None:
            self.progress(name)


STAGES = ("features", "score", "personas", "churn", "lists", "write")


def build_member_profiles(
    *, as_of: date | None = None, progress: Callable[[str], None] | None = None
) -> PersonaRun:
    """Profile every consenting member as of `as_of` (default: now) and store the run."""
    day, moment = _moment(as_of)
    try:
        weights = scoring.check_weights(ScoreWeights.current().as_dict())
    except scoring.WeightsError as exc:
        raise AnalyticsError(f"The score weights cannot be used: {exc}.") from None
    params = {
        "weights": weights,
        "k_range": [settings.ANALYTICS_PERSONA_K_MIN, settings.ANALYTICS_PERSONA_K_MAX],
        "fixed_k": settings.ANALYTICS_PERSONA_K or None,
        "seed": settings.ANALYTICS_SEED,
        "churn_horizon_days": settings.ANALYTICS_CHURN_HORIZON_DAYS,
        "churn_snapshots": settings.ANALYTICS_CHURN_SNAPSHOTS,
        "top_share": TOP_SHARE,
    }
    stages = _Stages(progress)
    members = eligible_members(at=moment)

    with stages.stage("features"):
        matrix = compute_features(members=members, as_of=moment)
    left_out = User.objects.filter(is_active=True, is_staff=False, date_joined__lt=moment).count() - len(
        matrix
    )
    values = matrix.values
    with stages.stage("score"):
        scores, contributions = scoring.score(values, weights)
    with stages.stage("personas"), threadpool_limits(limits=NUMERIC_THREADS):
        result = personas.cluster(
            values,
            k_range=range(settings.ANALYTICS_PERSONA_K_MIN, settings.ANALYTICS_PERSONA_K_MAX + 1),
            fixed_k=settings.ANALYTICS_PERSONA_K or None,
            seed=settings.ANALYTICS_SEED,
        )
        persona_rows = _personas(result, day)
    with stages.stage("churn"), threadpool_limits(limits=NUMERIC_THREADS):
        method, model, risk, reasons = _churn(matrix, members=members, moment=moment)
    with stages.stage("lists"):
        high_potential, at_risk = _lists(values, scores)
    with stages.stage("write"):
        run = _write(
            day=day,
            params=params,
            matrix=matrix,
            scores=scores,
            contributions=contributions,
            clustering=result,
            persona_rows=persona_rows,
            churn_method=method,
            model=model,
            risk=risk,
            reasons=reasons,
            high_potential=high_potential,
            at_risk=at_risk,
            left_out=left_out,
        )
    PersonaRun.objects.filter(pk=run.pk).update(durations=stages.durations)
    run.durations = stages.durations
    return run


def _personas(result: personas.Clustering, day: date) -> list[Persona]:
    """Unsaved Persona rows for the clusters, with keys and names carried over from the last run."""
    if result.k == 0:
        return []
    last_run = (
        PersonaRun.objects.filter(status=PersonaRun.Status.DONE, as_of__lt=day).order_by("-as_of").first()
    )
    name_columns = get_translation_fields("name")  # the creator's name in every language
    previous = (
        list(Persona.objects.filter(run=last_run).values_list("key", "centroid", *name_columns))
        if last_run
        else []
    )
    old_centroids = np.array([[c[name] for name in personas.CLUSTER_FEATURES] for _k, c, *_n in previous])
    keys = personas.match_previous(
        result.centroids,
        old_centroids.reshape(len(previous), len(personas.CLUSTER_FEATURES)),
        [k for k, _c, *_n in previous],
        std=result.std,
    )
    names = {key: dict(zip(name_columns, values, strict=True)) for key, _c, *values in previous}
    rows = []
    for index, (key, centroid) in enumerate(zip(keys, result.centroids, strict=True)):
        en, zh = personas.describe(centroid, mean=result.mean, std=result.std)
        rows.append(
            Persona(
                key=key,
                **names.get(key, {}),
                description_en=en,
                description_zh=zh,
                centroid={
                    name: round(float(v), 6)
                    for name, v in zip(personas.CLUSTER_FEATURES, centroid, strict=True)
                },
                size=int((result.labels == index).sum()),
            )
        )
    return rows


def _churn(
    matrix: FeatureMatrix, *, members: "QuerySet[User]", moment: datetime
) -> tuple[str, churn.ChurnModel | None, np.ndarray, list[list[str]]]:
    """Risk for today's paying members, from a model on history when there is enough of it."""
    values = matrix.values
    paying = values[:, INDEX["paying"]] > 0
    risk = np.full(len(values), np.nan)
    reasons: list[list[str]] = [[] for _ in range(len(values))]
    if not paying.any():
        return PersonaRun.ChurnMethod.NONE, None, risk, reasons
    # Labels first, from one query over payments: who paid at each cut-off, and who of them
    # was still paying a horizon later (the next cut-off, the newest being today). The features
    # of past cut-offs, the costly part, are read only when history holds enough churn to learn
    # from, and then for a seeded random sample of each cut-off's payers, all cut-offs in one
    # pass over the tables.
    horizon = timedelta(days=settings.ANALYTICS_CHURN_HORIZON_DAYS)
    moments = [moment - horizon * j for j in range(settings.ANALYTICS_CHURN_SNAPSHOTS + 1)]
    payer_ids, covered = paying_over(members=members, moments=moments)
    cutoffs = []
    for j in range(1, len(moments)):
        payers = covered[:, j]
        if payers.any():
            cutoffs.append((moments[j], payer_ids[payers], payer_ids[payers & ~covered[:, j - 1]]))
    snapshots = []
    if churn.enough_history([(len(p), len(lapsed)) for _c, p, lapsed in cutoffs]):
        priority = np.random.default_rng(settings.ANALYTICS_SEED).permutation(len(payer_ids))
        samples = [churn.sample(p, priority[np.searchsorted(payer_ids, p)]) for _c, p, _l in cutoffs]
        sampled = User.objects.filter(pk__in=id_set(np.unique(np.concatenate(samples))))
        history = features_at(members=sampled, moments=[cutoff for cutoff, _p, _l in cutoffs])
        for (_cutoff, _payers, lapsed), chosen, then in zip(cutoffs, samples, history, strict=True):
            rows = np.isin(then.member_ids, chosen)
            snapshots.append((then.values[rows], np.isin(then.member_ids[rows], lapsed).astype(int)))
    model = churn.train(snapshots[1:], snapshots[0], seed=settings.ANALYTICS_SEED) if snapshots else None
    if model is not None:
        method = PersonaRun.ChurnMethod.MODEL
        part_risk, part_reasons = model.risk(values[paying])
    else:
        method = PersonaRun.ChurnMethod.RULES
        part_risk, part_reasons = churn.rule_risk(values[paying])
    part_risk, part_reasons = churn.with_scheduled_cancellations(values[paying], part_risk, part_reasons)
    risk[paying] = part_risk
    for i, why in zip(np.flatnonzero(paying), part_reasons, strict=True):
        reasons[i] = why
    return method, model, risk, reasons


def _lists(values: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """High-potential fans (free or lowest-paid tier, top quarter, rising) and at-risk loyal
    fans (top quarter, engagement falling)."""
    if len(scores) < 4:
        empty = np.zeros(len(scores), dtype=bool)
        return empty, empty
    top = scores >= np.quantile(scores, 1 - TOP_SHARE)
    trend = values[:, INDEX["trend"]]
    lowest_paid = Tier.objects.filter(rank__gt=0).order_by("rank").values_list("rank", flat=True).first() or 0
    low_tier = values[:, INDEX["tier_rank"]] <= lowest_paid
    return top & low_tier & (trend > RISING), top & (trend <= FALLING)


def _write(
    *,
    day: date,
    params: dict,
    matrix: FeatureMatrix,
    scores: np.ndarray,
    contributions: dict[str, np.ndarray],
    clustering: personas.Clustering,
    persona_rows: list[Persona],
    churn_method: str,
    model: churn.ChurnModel | None,
    risk: np.ndarray,
    reasons: list[list[str]],
    high_potential: np.ndarray,
    at_risk: np.ndarray,
    left_out: int,
) -> PersonaRun:
    values = matrix.values
    revenue = values[:, INDEX["revenue"]]
    metrics = {
        "silhouette_by_k": {str(k): round(v, 4) for k, v in clustering.scores_by_k.items()},
        "high_potential": int(high_potential.sum()),
        "at_risk_loyal": int(at_risk.sum()),
        "paying": int((values[:, INDEX["paying"]] > 0).sum()),
        "mean_score": round(float(scores.mean()), 2) if len(scores) else None,
    }
    if model is not None:
        metrics["churn_model"] = model.params | {
            "train_size": model.train_size,
            "holdout_size": model.holdout_size,
        }
    with transaction.atomic():
        # The day's earlier run goes, its profiles first: deleting the run alone would have
        # Django set every profile's persona to NULL, row by row, before deleting them.
        MemberProfile.objects.filter(run__as_of=day).delete()
        PersonaRun.objects.filter(as_of=day).delete()
        metrics["features_pruned"] = _prune_features(day=day)
        run = PersonaRun.objects.create(
            as_of=day,
            status=PersonaRun.Status.DONE,
            finished_at=timezone.now(),
            params=params,
            members=len(matrix),
            left_out=left_out,
            k=clustering.k,
            silhouette=clustering.silhouette,
            churn_method=churn_method,
            churn_auc=model.auc if model else None,
            churn_brier=model.brier if model else None,
            metrics=metrics,
        )
        for index, persona in enumerate(persona_rows):
            members_in = clustering.labels == index
            persona.run = run
            persona.avg_score = round(float(scores[members_in].mean()), 2) if members_in.any() else 0
            persona.revenue = Decimal(str(round(float(revenue[members_in].sum()), 2)))
            paying_risk = risk[members_in & ~np.isnan(risk)]
            persona.avg_churn = round(float(paying_risk.mean()), 4) if len(paying_risk) else None
        Persona.objects.bulk_create(persona_rows)
        forget_directory_choices()  # bulk_create sends no signal (the run's save did, too early)
        MemberFeatures.objects.bulk_create(_feature_blocks(run, matrix))
        persona_ids = [persona.pk for persona in persona_rows]
        _insert_profiles(
            run=run,
            member_ids=matrix.member_ids.tolist(),
            scores=np.round(scores, 3).tolist(),
            persona_ids=[persona_ids[label] for label in clustering.labels.tolist()]
            if persona_ids
            else [None] * len(matrix),
            risk=[None if np.isnan(r) else r for r in np.round(risk, 4).tolist()],
            reasons=reasons,
            high_potential=high_potential.tolist(),
            at_risk=at_risk.tolist(),
            trend=np.round(values[:, INDEX["trend"]], 4).tolist(),
            contributions={term: np.round(c, 3).tolist() for term, c in contributions.items()},
        )
    return run


# --- Features of a run, stored in blocks -------------------------------------------------

FEATURE_BLOCK = 2_000  # members per MemberFeatures row


def _pack(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return zlib.compress(buffer.getvalue(), 1)  # mostly small counts: a fifth of the size


def _unpack(data: bytes | memoryview) -> np.ndarray:
    return np.load(io.BytesIO(zlib.decompress(data)), allow_pickle=False)


def _feature_blocks(run: PersonaRun, matrix: FeatureMatrix) -> Iterator[MemberFeatures]:
    for start in range(0, len(matrix), FEATURE_BLOCK):
        ids = matrix.member_ids[start : start + FEATURE_BLOCK]
        yield MemberFeatures(
            run=run,
            first_member_id=int(ids[0]),
            last_member_id=int(ids[-1]),
            names=list(FEATURES),
            member_ids=_pack(ids.astype("<i8")),
            values=_pack(matrix.values[start : start + FEATURE_BLOCK].astype("<f8")),
        )


def _prune_features(*, day: date) -> int:
    """Delete the feature blocks of runs older than ANALYTICS_FEATURES_KEEP_DAYS (one DELETE)
    and return how many went. Blocks do not reference members, so this is what ends a deleted
    member's numbers in past runs. Kept whatever their age: the run being written (a backfill
    of an old day) and the newest run, whose features the CRM member card reads. Profiles,
    personas and the runs themselves stay. Call it once the day's earlier run is gone."""
    cutoff = timezone.localdate() - timedelta(days=settings.ANALYTICS_FEATURES_KEEP_DAYS)
    newest = PersonaRun.objects.filter(status=PersonaRun.Status.DONE).aggregate(newest=Max("as_of"))["newest"]
    keep_from = min(cutoff, max(day, newest or day))
    pruned, _by_model = (
        MemberFeatures.objects.filter(run__as_of__lt=keep_from).exclude(run__as_of=day).delete()
    )
    return pruned


def features_of(*, member: User, run: PersonaRun) -> dict[str, float] | None:
    """A member's features in a run (name: value, as the run computed them), or None when the
    run did not profile them. One indexed row."""
    block = (
        MemberFeatures.objects.filter(run=run, first_member_id__lte=member.pk, last_member_id__gte=member.pk)
        .values_list("names", "member_ids", "values")
        .first()
    )
    if block is None:
        return None
    names, packed_ids, packed_values = block
    ids = _unpack(packed_ids)
    i = int(np.searchsorted(ids, member.pk))
    if i == len(ids) or ids[i] != member.pk:
        return None
    row = _unpack(packed_values)[i]
    return {name: round(float(value), 4) for name, value in zip(names, row, strict=True)}


def run_features(*, run: PersonaRun) -> FeatureMatrix:
    """Every member's features in a run, as the matrix the run computed (columns: FEATURES;
    a run stored with other feature names is refused rather than misread)."""
    ids, blocks = [], []
    for names, packed_ids, packed_values in (
        MemberFeatures.objects.filter(run=run)
        .order_by("first_member_id")
        .values_list("names", "member_ids", "values")
        .iterator(chunk_size=50)
    ):
        if tuple(names) != FEATURES:
            raise AnalyticsError(
                f"Run {run.as_of:%Y-%m-%d} stored other features than this version computes."
            )
        ids.append(_unpack(packed_ids))
        blocks.append(_unpack(packed_values))
    if not ids:
        return FeatureMatrix(np.zeros(0, dtype=np.int64), np.zeros((0, len(FEATURES))))
    return FeatureMatrix(np.concatenate(ids).astype(np.int64), np.vstack(blocks).astype(np.float64))


# --- Profiles ------------------------------------------------------------------------------


def _insert_profiles(
    *,
    run: PersonaRun,
    member_ids: list[int],
    scores: list[float],
    persona_ids: list[int | None],
    risk: list[float | None],
    reasons: list[list[str]],
    high_potential: list[bool],
    at_risk: list[bool],
    trend: list[float],
    contributions: dict[str, list[float]],
) -> None:
    """One MemberProfile row per member, inside the caller's transaction: PostgreSQL's COPY fed
    as the rows are formatted (so Python and the server work side by side, and memory holds one
    chunk), else bulk_create in batches."""
    terms = list(contributions)
    if connection.vendor != "postgresql":
        per_member = zip(*contributions.values(), strict=True) if terms else itertools.repeat(())
        columns = (member_ids, scores, persona_ids, risk, reasons, high_potential, at_risk, trend, per_member)
        rows = zip(*columns, strict=False)
        for batch in _batches(rows, WRITE_BATCH):
            MemberProfile.objects.bulk_create(
                MemberProfile(
                    run=run,
                    member_id=member,
                    score=score,
                    persona_id=persona,
                    churn_risk=churn_risk,
                    churn_reasons=why,
                    high_potential=high,
                    at_risk_loyal=falling,
                    trend=member_trend,
                    contributions=dict(zip(terms, shares, strict=True)),
                )
                for member, score, persona, churn_risk, why, high, falling, member_trend, shares in batch
            )
        return
    # COPY's text format: tab-separated, \N for NULL, formatted a column at a time for each
    # chunk of members (row by row, with json.dumps, this was the slowest part of the write).
    # The JSON is written by hand: term and reason names are plain ASCII identifiers.
    null = "\\N"
    reasons_json: dict[tuple[str, ...], str] = {}

    def reason_text(why: list[str]) -> str:
        key = tuple(why)
        if key not in reasons_json:
            reasons_json[key] = json.dumps(why).replace("\\", "\\\\")
        return reasons_json[key]

    def pieces() -> Iterator[str]:
        run_id = str(run.pk)
        for start in range(0, len(member_ids), COPY_CHUNK):
            end = start + COPY_CHUNK
            shares = [map(f'"{term}": '.__add__, map(repr, contributions[term][start:end])) for term in terms]
            columns = (
                itertools.repeat(run_id),
                map(str, member_ids[start:end]),
                map(repr, scores[start:end]),
                (null if persona is None else str(persona) for persona in persona_ids[start:end]),
                (null if value is None else repr(value) for value in risk[start:end]),
                map(reason_text, reasons[start:end]),
                ("t" if flag else "f" for flag in high_potential[start:end]),
                ("t" if flag else "f" for flag in at_risk[start:end]),
                map(repr, trend[start:end]),
                ("{" + text + "}" for text in map(", ".join, zip(*shares, strict=True)))
                if terms
                else itertools.repeat("{}"),
            )
            yield "".join(line + "\n" for line in map("\t".join, zip(*columns, strict=False)))

    table = connection.ops.quote_name(MemberProfile._meta.db_table)
    names = ", ".join(
        connection.ops.quote_name(column_of(MemberProfile, name))
        for name in (
            "run",
            "member",
            "score",
            "persona",
            "churn_risk",
            "churn_reasons",
            "high_potential",
            "at_risk_loyal",
            "trend",
            "contributions",
        )
    )
    with connection.cursor() as cursor:
        cursor.cursor.copy_expert(f"COPY {table} ({names}) FROM STDIN", _Stream(pieces()), size=1 << 16)


class _Stream(io.RawIOBase):
    """A readable file over an iterator of text pieces, for COPY ... FROM STDIN: each read
    formats only as many pieces as it returns."""

    def __init__(self, pieces: Iterator[str]) -> None:
        self.pieces = pieces
        self.pending = b""
        self.offset = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self.pending) - self.offset < size:
            piece = next(self.pieces, "")
            if not piece:
                break
            self.pending = self.pending[self.offset :] + piece.encode()
            self.offset = 0
        end = len(self.pending) if size < 0 else self.offset + size
        data = self.pending[self.offset : end]
        self.offset += len(data)
        return data


def _batches(rows: Iterable[tuple], size: int) -> Iterator[list[tuple]]:
    while batch := list(itertools.islice(rows, size)):
        yield batch


def run_summary(*, run: PersonaRun) -> dict:
    """What the command, the task and the nightly chain report about a run."""
    return {
        "as_of": run.as_of.isoformat(),
        "members": run.members,
        "left_out_without_consent": run.left_out,
        "personas": run.k,
        "silhouette": None if run.silhouette is None else round(run.silhouette, 3),
        "churn_method": str(run.churn_method),
        "churn_auc": None if run.churn_auc is None else round(run.churn_auc, 3),
        "high_potential": run.metrics.get("high_potential", 0),
        "at_risk_loyal": run.metrics.get("at_risk_loyal", 0),
        "feature_blocks_pruned": run.metrics.get("features_pruned", 0),
        "seconds": run.durations,
    }


@transaction.atomic
def reset_score_weights(*, actor: User | None = None) -> ScoreWeights:
    """The admin's "reset to defaults": the weights row goes back to the default weights."""
    weights = ScoreWeights.current()
    before = audit.snapshot(weights, fields=DEFAULT_WEIGHTS)
    for name, value in DEFAULT_WEIGHTS.items():
        setattr(weights, name, value)
    weights.save()
    changes = audit.diff(before, audit.snapshot(weights, fields=DEFAULT_WEIGHTS))
    if actor is not None and changes:
        audit.record(actor=actor, action="scoreweights.reset", target=weights, details={"changes": changes})
    return weights


def rename_persona(*, persona: Persona, names: Mapping[str, str | None]) -> Persona:
    """Name a persona, per language (`{"en": ..., "zh-hans": ...}`; a language left out or empty
    shows the English name, else the generated description); later runs keep the names for the
    persona they match to it."""
    columns = {
        build_localized_fieldname("name", language): " ".join((name or "").split())[:80]
        for language, name in names.items()
        if language in dict(settings.LANGUAGES)
    }
    Persona.objects.filter(pk=persona.pk).update(**columns)
    forget_directory_choices()  # an update sends no signal
    for column, name in columns.items():
        setattr(persona, column, name)
    return persona
