"""usergroup.warmup: what a web process does once when it starts (usergroup.wsgi)."""

import importlib
import sys

import pytest
from django.forms.renderers import get_default_renderer
from django.template import engines
from django.urls import clear_url_caches, get_resolver

from usergroup import warmup


@pytest.fixture
def fresh_caches():
    """Empty template caches and reverse tables, as in a process that has served nothing."""
    loaders = [
        engines["django"].engine.template_loaders[0],
        get_default_renderer().engine.engine.template_loaders[0],
    ]
    for loader in loaders:
        loader.reset()
    clear_url_caches()
    yield loaders
    clear_url_caches()


def test_warm_worker_compiles_the_templates_and_fills_every_languages_url_tables(fresh_caches, caplog):
    site, widgets = fresh_caches
    caplog.set_level("INFO", logger="usergroup.warmup")
    warmup.warm_worker()
    kept = set(site.get_template_cache)
    # The site's own, the admin's and the forms' templates are compiled and kept.
    assert {"home.html", "base.html", "admin/base_site.html", "community/notifications.html"} <= kept
    assert "django/forms/widgets/select.html" in widgets.get_template_cache
    assert not [name for name, kept_as in site.get_template_cache.items() if isinstance(kept_as, type)]
    resolver = get_resolver()
    assert {"en", "zh-hans"} <= set(resolver._reverse_dict)
    admin = next(p for p in resolver.url_patterns if getattr(p, "namespace", None) == "admin")
    assert {"en", "zh-hans"} <= set(admin._reverse_dict)  # an included namespace fills its own
    assert "templates compiled" in caplog.text


def test_warm_worker_freezes_what_the_process_holds_so_full_collections_skip_it(fresh_caches):
    import gc

    try:
        warmup.warm_worker()
        frozen = gc.get_freeze_count()
        assert frozen > 10_000  # the modules, settings, templates and URL tables
        # A full collection now walks what is left in the oldest generation: little of it.
        assert len(gc.get_objects(generation=2)) < frozen // 10
        # What requests create later is still collected.
        cycle: list = []
        cycle.append(cycle)
        del cycle
        assert gc.collect() >= 1
    finally:
        gc.unfreeze()  # the rest of the test run collects as usual


def test_wsgi_warms_the_process_only_when_asked(settings, monkeypatch):
    calls = []
    monkeypatch.setattr(warmup, "warm_worker", lambda: calls.append(1))
    for setting, expected in ((False, []), (True, [1])):
        settings.WARM_WORKER = setting
        sys.modules.pop("usergroup.wsgi", None)
        importlib.import_module("usergroup.wsgi")
        assert calls == expected
    sys.modules.pop("usergroup.wsgi", None)


def test_warm_worker_is_on_in_production_and_off_in_development_and_tests(settings):
    # Under pytest (TESTING) it is off, so no test pays a second per process for it.
    assert settings.WARM_WORKER is False
