"""The members × items matrix read from the database: weights, decay, and what is left out."""

import math
from datetime import timedelta

import numpy as np
import pytest
from django.utils import timezone

from community.models import Comment
from content.models import Bookmark, ContentView, LessonProgress, Like
from members.models import User
from recommend.interactions import Weights, interaction_matrix
from tests.factories import ContentFactory, LessonFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_weights_decay_and_sources_are_combined_per_member_and_item():
    now = timezone.now()
    ann, bob = UserFactory(), UserFactory()
    article, other = ContentFactory(), ContentFactory()
    lesson = LessonFactory()
    ContentView.objects.create(
        user=ann, content=article, started_at=now - timedelta(days=1), dwell_seconds=120
    )
    ContentView.objects.create(user=ann, content=article, started_at=now, dwell_seconds=180, completed=True)
    Like.objects.create(user=ann, content=article, created_at=now)
    Bookmark.objects.create(user=bob, content=other, created_at=now - timedelta(days=90))
    Comment.objects.create(author=bob, content=article, body="Nice", created_at=now)
    Comment.objects.create(author=bob, content=other, body="hidden", created_at=now, hidden=True)
    LessonProgress.objects.create(user=bob, lesson=lesson, completed_at=now)
    ContentView.objects.create(user=bob, content=other, started_at=now + timedelta(days=1))  # after `now`

    weights = Weights()
    result = interaction_matrix(members=User.objects.all(), now=now, weights=weights)
    dense = result.matrix.toarray()
    row = {member: i for i, member in enumerate(result.members)}
    col = {item: i for i, item in enumerate(result.items)}
    assert set(col) == {article.pk, other.pk, lesson.course_id}

    ann_article = (
        weights.view * math.log1p(2) + weights.minutes * math.log1p(5) + weights.completed + weights.like
    )
    assert dense[row[ann.pk], col[article.pk]] == pytest.approx(ann_article, rel=1e-5)
    assert dense[row[bob.pk], col[other.pk]] == pytest.approx(
        weights.bookmark * 0.5, rel=1e-5
    )  # one half-life old
    assert dense[row[bob.pk], col[article.pk]] == pytest.approx(weights.comment, rel=1e-5)
    assert dense[row[bob.pk], col[lesson.course_id]] == pytest.approx(
        weights.lessons * math.log1p(1), rel=1e-5
    )
    assert dense[row[ann.pk], col[other.pk]] == 0


def test_only_the_given_members_are_read_and_an_empty_community_is_an_empty_matrix():
    now = timezone.now()
    item = ContentFactory()
    ann, bob = UserFactory(personalisation_consent=True), UserFactory(personalisation_consent=False)
    for member in (ann, bob):
        ContentView.objects.create(user=member, content=item, started_at=now)
    result = interaction_matrix(members=User.objects.filter(personalisation_consent=True), now=now)
    assert list(result.members) == [ann.pk] and result.shape == (1, 1)

    empty = interaction_matrix(members=User.objects.none(), now=now)
    assert empty.shape == (0, 0) and len(empty.items) == 0
    assert np.isfinite(result.matrix.data).all()


def test_one_members_activity_in_one_statement_is_activity_of_them_row_for_row(
    django_assert_num_queries,
):
    from recommend.interactions import activity_of, member_activity
    from recommend.models import Dismissal

    now = timezone.now()
    ann, bob = UserFactory(), UserFactory()
    article, other, third = ContentFactory(), ContentFactory(), ContentFactory()
    first, second = LessonFactory(), LessonFactory()
    second.course = first.course
    second.save()
    Like.objects.create(user=ann, content=article, created_at=now - timedelta(days=3))
    Like.objects.create(user=ann, content=other, created_at=now + timedelta(hours=1))  # after `now`
    Like.objects.create(user=bob, content=third, created_at=now)  # someone else's
    Bookmark.objects.create(user=ann, content=other, created_at=now - timedelta(days=90))
    Comment.objects.create(author=ann, content=article, body="One", created_at=now - timedelta(days=2))
    Comment.objects.create(author=ann, content=article, body="Two", created_at=now - timedelta(days=1))
    Comment.objects.create(author=ann, content=third, body="hidden", created_at=now, hidden=True)
    LessonProgress.objects.create(user=ann, lesson=first, completed_at=now - timedelta(days=5))
    LessonProgress.objects.create(user=ann, lesson=second, completed_at=now - timedelta(days=4))
    Dismissal.objects.create(member=ann, item=third)
    Dismissal.objects.create(member=bob, item=article)

    def as_lists(parts):
        return [
            sorted(zip(*(a.tolist() for a in (p.users, p.items, p.values, p.moments)), strict=True))
            for p in parts
        ]

    expected = activity_of(members=User.objects.filter(pk=ann.pk), now=now)
    with django_assert_num_queries(1):
        activity, dismissed = member_activity(member_id=ann.pk, now=now)
    assert as_lists(activity) == as_lists(expected) and all(len(p.users) for p in activity)
    assert dismissed == {third.pk}
    with django_assert_num_queries(1):
        assert member_activity(member_id=ann.pk, now=now, dismissed=False)[1] == frozenset()
    nobody = member_activity(member_id=UserFactory().pk, now=now)
    assert as_lists(nobody[0]) == [[], [], [], []] and nobody[1] == frozenset()
