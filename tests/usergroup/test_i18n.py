import subprocess
import sys
from pathlib import Path

import pytest
from django.utils import translation

ROOT = Path(__file__).resolve().parents[2]


def test_every_string_has_a_compiled_zh_hans_translation():
    out = subprocess.run(
        [sys.executable, "scripts/i18n.py", "check"], cwd=ROOT, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.django_db
def test_pages_render_in_chinese(client):
    client.cookies["django_language"] = "zh-hans"
    html = client.get("/").content.decode()
    assert '<html lang="zh-hans"' in html
    assert "首页" in html  # Home
    assert "免费加入" in html  # Join for free
    with translation.override("zh-hans"):
        # allauth ships its own zh-hans catalogue; the sign-up page uses it.
        signup = client.get("/accounts/signup/").content.decode()
    assert "注册" in signup


@pytest.mark.django_db
def test_every_translated_model_is_edited_in_every_language_in_the_admin(admin_client):
    """Each model with creator texts per language (the apps' translation.py) has an admin that
    shows a field per language for each of them, and never the bare field."""
    from django.conf import settings
    from django.contrib import admin
    from django.urls import reverse
    from modeltranslation.admin import TranslationAdmin
    from modeltranslation.translator import translator
    from modeltranslation.utils import build_localized_fieldname

    from analytics.models import Persona
    from analytics.services import build_member_profiles
    from tests.factories import UserFactory

    for _ in range(12):
        UserFactory(analytics_consent=True)
    build_member_profiles()
    models = translator.get_registered_models(abstract=False)
    assert {m.__name__ for m in models} >= {
        "Tier",
        "Category",
        "Level",
        "Privilege",
        "RedemptionItem",
        "Persona",
    }
    for model in models:
        assert isinstance(admin.site._registry[model], TranslationAdmin), model
        opts = model._meta
        if model is Persona:  # made by the nightly run, renamed by the creator
            url = reverse("admin:analytics_persona_change", args=[Persona.objects.first().pk])
        else:
            url = reverse(f"admin:{opts.app_label}_{opts.model_name}_add")
        html = admin_client.get(url).content.decode()
        for field in translator.get_options_for_model(model).get_field_names():
            assert f'name="{field}"' not in html, (model, field)
            for language, _name in settings.LANGUAGES:
                assert f'name="{build_localized_fieldname(field, language)}"' in html, (
                    model,
                    field,
                    language,
                )


def test_no_string_is_translated_inside_an_f_string():
    """makemessages (xgettext) does not read the expressions of an f-string: a message translated
    only there would leave the catalogue, and its translation with it, on the next update."""
    import re

    inside = re.compile(r"""\bf(["']).*\{\s*(?:gettext|ngettext|pgettext|gettext_lazy|_)\(""")
    found = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in ROOT.glob("*/**/*.py")
        if not {".venv", "var", "tests", "node_modules"} & set(path.relative_to(ROOT).parts)
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if inside.search(line)
    ]
    assert not found, found
