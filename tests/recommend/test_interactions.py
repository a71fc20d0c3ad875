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
