"""The recommendations' settings, experiments and the promotion of a winner are in the audit log,
once per action."""

import pytest
from django.urls import reverse

from members.models import AuditEvent
from recommend.models import Algorithm, Experiment, RecommendSettings, Variant
from tests.audit_helpers import admin_form, assert_one, logged_in
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_second_factor(settings):
    settings.MFA_REQUIRED_FOR_STAFF = False


@pytest.fixture
def creator(db):
    return UserFactory(is_staff=True, is_superuser=True)


def experiment_with_variants() -> Experiment:
    experiment = Experiment.objects.create(name="Home test", key="home-test")
    for name, algorithm in (("control", Algorithm.ITEM_CF), ("b", Algorithm.CONTENT)):
        Variant.objects.create(
            experiment=experiment, name=name, algorithm=algorithm, weight=1, params={"history": 7}
        )
    return experiment


def test_changing_the_settings_in_the_admin_is_one_row(creator):
    row = RecommendSettings.current()
    client = logged_in(creator)
    url = reverse("admin:recommend_recommendsettings_change", args=[row.pk])
    assert client.post(url, admin_form(client, url, freshness_days="30")).status_code == 302
    event = assert_one(actor=creator, action="recommendsettings.change", target=row)
    assert event.details["changes"] == {"freshness_days": [14, 30]}


def test_start_stop_and_promote_from_the_admin_are_one_row_each(creator):
    experiment = experiment_with_variants()
    client = logged_in(creator)
    client.post(reverse("admin:recommend_experiment_start", args=[experiment.pk]))
    assert_one(actor=creator, action="experiment.start", target=experiment)
    AuditEvent.objects.all().delete()

    client.post(reverse("admin:recommend_experiment_stop", args=[experiment.pk]))
    assert_one(actor=creator, action="experiment.stop", target=experiment)
    AuditEvent.objects.all().delete()

    before = RecommendSettings.current()
    b = experiment.variants.get(name="b")
    client.post(reverse("admin:recommend_experiment_promote", args=[experiment.pk, b.pk]))
    assert RecommendSettings.current().algorithm == Algorithm.CONTENT
    row = assert_one(actor=creator, action="experiment.promote", target=experiment)
    assert row.details["variant"] == b.pk and row.details["stopped"] is False
    assert row.details["changes"]["algorithm"] == [before.algorithm, Algorithm.CONTENT]


def test_a_refused_start_leaves_no_row(creator):
    lonely = Experiment.objects.create(name="Lonely", key="lonely")
    logged_in(creator).post(reverse("admin:recommend_experiment_start", args=[lonely.pk]))
    assert Experiment.objects.get(pk=lonely.pk).status == Experiment.Status.DRAFT
    assert not AuditEvent.objects.exists()
