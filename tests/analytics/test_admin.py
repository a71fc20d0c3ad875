"""The creator's analytics admin: score weights, runs and persona names; the nightly chain."""

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from analytics.models import DEFAULT_WEIGHTS, Persona, PersonaRun, ScoreWeights
from analytics.services import build_member_profiles
from tests.factories import UserFactory
from usergroup import nightly

pytestmark = pytest.mark.django_db


def weights_form(**changes) -> dict:
    return {name: str(value) for name, value in (DEFAULT_WEIGHTS | changes).items()}


def test_weights_are_edited_validated_and_reset(admin_client):
    page = admin_client.get(reverse("admin:analytics_scoreweights_changelist"), follow=True)
    assert page.status_code == 200 and "Reset to defaults" in page.content.decode()
    weights = ScoreWeights.objects.get()
    url = reverse("admin:analytics_scoreweights_change", args=[weights.pk])
    bad = admin_client.post(url, weights_form(views=-2))
    assert "cannot be negative" in bad.content.decode()
    zero = admin_client.post(url, dict.fromkeys(DEFAULT_WEIGHTS, "0"))
    assert "At least one weight must be above 0" in zero.content.decode()
    assert ScoreWeights.objects.get().views == DEFAULT_WEIGHTS["views"]
    assert admin_client.post(url, weights_form(posts=9)).status_code == 302
    assert ScoreWeights.current().posts == 9
    admin_client.post(reverse("admin:analytics_scoreweights_reset"))
    assert ScoreWeights.current().as_dict() == DEFAULT_WEIGHTS and ScoreWeights.objects.count() == 1


def test_runs_and_personas_in_the_admin(admin_client):
    for _ in range(12):
        UserFactory(analytics_consent=True)
    run = build_member_profiles()
    assert admin_client.get(reverse("admin:analytics_personarun_change", args=[run.pk])).status_code == 200
    assert (
        str(run.as_of.year)
        in admin_client.get(reverse("admin:analytics_personarun_changelist")).content.decode()
    )
    persona = Persona.objects.filter(run=run).first()
    url = reverse("admin:analytics_persona_change", args=[persona.pk])
    assert (
        admin_client.post(url, {"name_en": "  Quiet   newcomers ", "name_zh_hans": "安静的新人"}).status_code
        == 302
    )
    persona = Persona.objects.get(pk=persona.pk)
    assert (persona.name_en, persona.name_zh_hans) == ("Quiet newcomers", "安静的新人")


def test_run_nightly_runs_every_job_and_fails_loudly(capsys, monkeypatch):
    call_command("run_nightly")
    out = capsys.readouterr().out
    assert "billing cycle" in out and "content stats" in out and "member profiles" in out
    assert PersonaRun.objects.count() == 1

    def broken():
        raise RuntimeError("disk full")

    monkeypatch.setattr(nightly, "JOBS", (("billing cycle", lambda: {}), ("broken", broken)))
    monkeypatch.setattr(nightly.run_nightly, "__kwdefaults__", {"jobs": nightly.JOBS})
    with pytest.raises(CommandError, match="1 nightly job"):
        call_command("run_nightly")
    assert "disk full" in capsys.readouterr().out
