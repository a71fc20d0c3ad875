#!/usr/bin/env python3
"""One entry point for a fresh clone; needs nothing but Python 3.11+.

    python3 scripts/dev.py serve   # set up .venv, migrate, seed demo data, run on http://127.0.0.1:8000
    python3 scripts/dev.py test    # set up .venv with test tools, run the whole test suite
    python3 scripts/dev.py lint    # ruff check + ruff format --check

Extra arguments after `test` go to pytest (`python3 scripts/dev.py test -k signup`).
The virtual environment is rebuilt only when the requirements files change.
"""

import hashlib
import os
import secrets
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = Path(os.environ.get("USERGROUP_VENV", ROOT / ".venv"))
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / ("python.exe" if os.name == "nt" else "python")

if sys.version_info < (3, 11):
    sys.exit(f"usergroup needs Python 3.11 or newer; this is {sys.version.split()[0]}.")


def run(*cmd, **kwargs) -> None:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    result = subprocess.run([str(c) for c in cmd], cwd=ROOT, **kwargs)
    if result.returncode:
        sys.exit(result.returncode)


def ensure_venv(requirements: str) -> None:
    """Create .venv and install `requirements` unless the same file is already installed."""
    req = ROOT / requirements
    digest = hashlib.sha256()
    for name in ("requirements.txt", requirements):
        digest.update((ROOT / name).read_bytes())
    stamp = VENV / f".installed-{req.stem}"
    if stamp.exists() and stamp.read_text() == digest.hexdigest() and PY.exists():
        return
    if not PY.exists():
        print(f"Creating a virtual environment in {VENV} …", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    run(PY, "-m", "pip", "install", "--disable-pip-version-check", "-q", "-r", req)
    stamp.write_text(digest.hexdigest())


def ensure_env_file() -> None:
    """Write a local .env (DEBUG on, a random SECRET_KEY) the first time the demo runs."""
    env_file = ROOT / ".env"
    if env_file.exists():
        return
    text = (ROOT / ".env.example").read_text()
    text = text.replace("SECRET_KEY=change-me", f"SECRET_KEY={secrets.token_urlsafe(50)}")
    text = text.replace("DEBUG=0", "DEBUG=1")
    env_file.write_text(text)
    print("Wrote .env for local development (edit it to change settings).", flush=True)


def serve(args: list[str]) -> None:
    ensure_venv("requirements.txt")
    ensure_env_file()
    manage = [PY, "manage.py"]
    run(*manage, "migrate", "--no-input", "-v", "0")
    run(*manage, "seed_demo", *args)
    addr = os.environ.get("RUNSERVER_ADDR", "127.0.0.1:8000")
    print(f"\nOpen http://{addr}/ (stop with Ctrl+C)\n", flush=True)
    os.execv(str(PY), [str(PY), "manage.py", "runserver", addr])


def test(args: list[str]) -> None:
    ensure_venv("requirements-dev.txt")
    os.execv(str(PY), [str(PY), "-m", "pytest", *args])


def lint(args: list[str]) -> None:
    ensure_venv("requirements-dev.txt")
    run(PY, "-m", "ruff", "check", ".")
    run(PY, "-m", "ruff", "format", "--check", ".")


COMMANDS = {"serve": serve, "test": test, "lint": lint}

if __name__ == "__main__":
    name = sys.argv[1] if len(sys.argv) > 1 else "serve"
    if name not in COMMANDS:
        sys.exit(f"usage: python3 scripts/dev.py [{'|'.join(COMMANDS)}] [args…]")
    os.chdir(ROOT)
    COMMANDS[name](sys.argv[2:])
