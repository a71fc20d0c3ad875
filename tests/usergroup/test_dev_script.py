"""scripts/dev.py serve: the SITE_URL emails and calendar files link to follows the address served."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import environ
import pytest

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("dev_script", ROOT / "scripts" / "dev.py")
assert _spec is not None and _spec.loader is not None
dev = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(dev)


def site_url_in(env_file: Path) -> str | None:
    """SITE_URL as django-environ reads it from `env_file` (into a dict, not os.environ)."""

    class Env(environ.Env):
        ENVIRON: dict[str, str] = {}

    Env.read_env(env_file)
    return Env.ENVIRON.get("SITE_URL")


@pytest.fixture
def checkout(tmp_path, monkeypatch):
    """A fresh clone in tmp_path whose serve runs nothing: it records the manage.py commands it
    would run, each with the SITE_URL .env held at that moment, and the runserver it would start."""
    (tmp_path / ".env.example").write_text((ROOT / ".env.example").read_text())
    monkeypatch.setattr(dev, "ROOT", tmp_path)
    monkeypatch.setattr(dev, "ensure_venv", lambda requirements: None)
    monkeypatch.delenv("SITE_URL", raising=False)
    monkeypatch.delenv("RUNSERVER_ADDR", raising=False)
    calls: list[tuple] = []
    monkeypatch.setattr(dev, "run", lambda *cmd: calls.append((cmd[2], site_url_in(tmp_path / ".env"))))
    monkeypatch.setattr(dev.os, "execv", lambda path, argv: calls.append(tuple(argv[1:])))
    return tmp_path, calls


def serve(monkeypatch, addr: str | None = None) -> None:
    if addr is None:
        monkeypatch.delenv("RUNSERVER_ADDR", raising=False)
    else:
        monkeypatch.setenv("RUNSERVER_ADDR", addr)
    dev.serve([])


@pytest.mark.parametrize(
    ("addr", "url"),
    [
        ("127.0.0.1:8000", "http://127.0.0.1:8000"),
        ("8001", "http://127.0.0.1:8001"),
        ("0.0.0.0:8000", "http://127.0.0.1:8000"),
        ("0:8002", "http://127.0.0.1:8002"),
        ("[::]:8000", "http://[::1]:8000"),
        ("[::1]:9000", "http://[::1]:9000"),
        ("localhost:8000", "http://localhost:8000"),
        ("192.168.1.20:8080", "http://192.168.1.20:8080"),
    ],
)
def test_site_url_is_where_a_browser_opens_the_served_address(addr, url):
    assert dev.site_url_for(addr) == url


def test_serving_on_new_addresses_moves_site_url_before_anything_runs(checkout, monkeypatch, capsys):
    root, calls = checkout
    serve(monkeypatch)  # the fresh clone's first run writes .env
    assert calls == [
        ("migrate", "http://127.0.0.1:8000"),
        ("seed_demo", "http://127.0.0.1:8000"),
        ("manage.py", "runserver", "127.0.0.1:8000"),
    ]
    assert "Open http://127.0.0.1:8000/" in capsys.readouterr().out
    secret = next(line for line in (root / ".env").read_text().splitlines() if line.startswith("SECRET_KEY="))

    calls.clear()
    serve(monkeypatch, "0.0.0.0:8001")  # the same clone served elsewhere: .env exists already
    assert calls == [
        ("migrate", "http://127.0.0.1:8001"),
        ("seed_demo", "http://127.0.0.1:8001"),
        ("manage.py", "runserver", "0.0.0.0:8001"),
    ]
    out = capsys.readouterr().out
    assert "SITE_URL in .env is now http://127.0.0.1:8001" in out and "Open http://127.0.0.1:8001/" in out

    calls.clear()
    serve(monkeypatch, "8002")
    assert calls[0] == ("migrate", "http://127.0.0.1:8002")
    text = (root / ".env").read_text()
    assert text.count("SITE_URL=") == 1 and text.count(dev.SITE_URL_NOTE) == 1
    assert secret in text  # the rest of .env is kept

    # The settings a manage.py command or a worker starts with read the address served last.
    env = {k: v for k, v in os.environ.items() if k not in {"SITE_URL", "DJANGO_SETTINGS_MODULE"}}
    env["USERGROUP_ENV_FILE"] = str(root / ".env")
    env["DJANGO_SETTINGS_MODULE"] = "usergroup.settings"
    code = "from django.conf import settings; print(settings.SITE_URL)"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.stdout.strip() == "http://127.0.0.1:8002", result.stderr


def test_a_dot_env_from_before_follows_the_address_too(checkout, monkeypatch):
    """A .env written before serve kept SITE_URL in step says .env.example's address, unmarked."""
    root, calls = checkout
    (root / ".env").write_text("DEBUG=1\nSITE_URL=http://127.0.0.1:8000\nSITE_NAME=usergroup\n")
    serve(monkeypatch, "127.0.0.1:8005")
    assert calls[0] == ("migrate", "http://127.0.0.1:8005")
    assert (root / ".env").read_text() == (
        f"DEBUG=1\n{dev.SITE_URL_NOTE}\nSITE_URL=http://127.0.0.1:8005\nSITE_NAME=usergroup\n"
    )
    (root / ".env").write_text("DEBUG=1\n")  # no SITE_URL at all: the site would say :8000
    serve(monkeypatch, "127.0.0.1:8006")
    assert site_url_in(root / ".env") == "http://127.0.0.1:8006"


@pytest.mark.parametrize(
    "line",
    [
        "SITE_URL=https://fans.example.com",  # set by hand, no note
        "SITE_URL='https://fans.example.com/'",
    ],
)
def test_a_site_url_of_ones_own_is_kept(checkout, monkeypatch, capsys, line):
    root, calls = checkout
    text = f"DEBUG=1\n# behind my tunnel\n{line}\n"
    (root / ".env").write_text(text)
    serve(monkeypatch, "127.0.0.1:8001")
    assert (root / ".env").read_text() == text
    assert calls[0][1].rstrip("/") == "https://fans.example.com"
    out = capsys.readouterr().out
    assert "Open http://127.0.0.1:8001/" in out
    assert "link to SITE_URL=https://fans.example.com (yours, kept)" in out

    # Under its note the line is serve's; with the note deleted it is one's own.
    (root / ".env").write_text(f"{dev.SITE_URL_NOTE}\nSITE_URL=http://127.0.0.1:8001\n")
    serve(monkeypatch, "127.0.0.1:8003")
    assert site_url_in(root / ".env") == "http://127.0.0.1:8003"
    (root / ".env").write_text("SITE_URL=http://127.0.0.1:8001\n")
    serve(monkeypatch, "127.0.0.1:8004")
    assert site_url_in(root / ".env") == "http://127.0.0.1:8001"


def test_a_site_url_in_the_environment_wins_and_leaves_dot_env_alone(checkout, monkeypatch, capsys):
    root, _calls = checkout
    serve(monkeypatch)
    before = (root / ".env").read_text()
    monkeypatch.setenv("SITE_URL", "https://demo.example.net")
    serve(monkeypatch, "0.0.0.0:8001")
    assert (root / ".env").read_text() == before
    assert "link to SITE_URL=https://demo.example.net (yours, kept)" in capsys.readouterr().out


def test_an_address_runserver_would_refuse_stops_serve_before_it_writes(checkout, monkeypatch):
    root, calls = checkout
    with pytest.raises(SystemExit, match="RUNSERVER_ADDR='localhost' is not an address"):
        serve(monkeypatch, "localhost")
    assert calls == [] and not (root / ".env").exists()
