from celery import shared_task


@shared_task(name="recommend.tasks.build_recommendations")
def build_recommendations() -> dict:
    """The neighbour table alone (the nightly chain builds it too)."""
    from recommend.services import build_neighbours

    build = build_neighbours()
    return {"build": build.pk, "items": build.items, "members": build.members}
