import json
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from recommend import evaluation
from recommend.datasets import DatasetError, events_from_csv, events_from_database
from recommend.models import EvaluationRun


class Command(BaseCommand):
    help = (
        "Offline evaluation on a time-based hold-out: precision@k, recall@k, NDCG@k, coverage and "
        "novelty of item_cf, content and popular, on this site's interactions or a CSV file."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--holdout",
            type=float,
            default=0.2,
            help="Share of each member's latest interactions hidden (default 0.2).",
        )
        parser.add_argument("--k", type=int, default=10, help="Length of each list (default 10).")
        parser.add_argument(
            "--input", type=Path, help="A CSV file with the header user,item,weight,timestamp."
        )
        parser.add_argument(
            "--json", action="store_true", dest="as_json", help="Print one JSON object per algorithm."
        )

    def handle(
        self, *args: Any, holdout: float, k: int, input: Path | None, as_json: bool, **options: Any
    ) -> None:
        if not 0 < holdout < 1:
            raise CommandError("--holdout must be between 0 and 1 (e.g. 0.2).")
        if not 1 <= k <= 1000:
            raise CommandError("--k must be between 1 and 1000.")
        try:
            events, texts = events_from_csv(input) if input else events_from_database()
        except DatasetError as exc:
            raise CommandError(f"{input}: {exc}") from exc
        if events.n_users == 0 or events.n_items == 0:
            raise CommandError(
                "There are no interactions to evaluate on (members who allowed personalisation read nothing yet)."
            )
        algorithms: dict[str, evaluation.Recommender] = {
            "item_cf": evaluation.item_cf(
                neighbours=settings.RECOMMEND_NEIGHBOURS, shrinkage=settings.RECOMMEND_SHRINKAGE, texts=texts
            ),
        }
        if texts is not None:
            algorithms["content"] = evaluation.content_based(texts)
        algorithms["popular"] = evaluation.popular
        results = evaluation.evaluate(events, k=k, holdout=holdout, algorithms=algorithms)
        rows = [r.as_dict() for r in results]
        # Every run is kept with its parameters and figures (admin → Recommend → evaluation runs).
        EvaluationRun.objects.create(
            source=str(input) if input else "site",
            params={
                "k": k, "holdout": holdout, "neighbours": settings.RECOMMEND_NEIGHBOURS,
                "shrinkage": settings.RECOMMEND_SHRINKAGE, "text_weight": evaluation.TEXT_WEIGHT,
                "short_history": evaluation.SHORT_HISTORY,
            },
            data={"members": events.n_users, "items": events.n_items, "interactions": len(events.users)},
            results=rows,
        )  # fmt: skip
        if as_json:
            self.stdout.write(json.dumps(rows, indent=2))
            return
        self.stdout.write(
            f"{events.n_users} members, {events.n_items} items, {len(events.users)} interactions; "
            f"last {holdout:.0%} of each member's interactions held out by time"
            + (
                ""
                if texts is not None
                else "; content (TF-IDF) needs item texts, so it is left out for a file"
            )
        )
        header = f"{'algorithm':<10} {'precision@' + str(k):>13} {'recall@' + str(k):>10} {'ndcg@' + str(k):>9} {'coverage':>9} {'novelty':>8} {'members':>8}"
        self.stdout.write(header)
        for r in rows:
            self.stdout.write(
                f"{r['algorithm']:<10} {r['precision']:>13.4f} {r['recall']:>10.4f} {r['ndcg']:>9.4f} "
                f"{r['coverage']:>9.4f} {r['novelty']:>8.2f} {r['members']:>8}"
            )
