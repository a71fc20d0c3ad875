#!/usr/bin/env python3
"""One entry point for a fresh clone; needs nothing but Python 3.11+.

    python3 scripts/dev.py serve   # set up .venv, migrate, seed demo data, run on http://127.0.0.1:8000
                                   # (RUNSERVER_ADDR=0.0.0.0:8001 serves elsewhere; SITE_URL follows)
    python3 scripts/dev.py test    # set up .venv with test tools, run the whole test suite
    python3 scripts/dev.py lint    # ruff check + ruff format --check + mypy, and the lock files in step
    python3 scripts/dev.py lock    # rewrite requirements.lock and requirements-dev.lock (uv, with hashes)

Extra arguments after `test` go to pytest (`python3 scripts/dev.py test -k signup`).
requirements.txt and requirements-dev.txt are the lists people edit; the virtual environment is
installed from their locks (every package pinned, with hashes: `pip install --require-hashes`)
and reinstalled only when a lock changes.
"""

import hashlib
import os
import re
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


# Each list people edit, and the lock generated from it (`python3 scripts/dev.py lock`).
LOCKS = {"requirements.txt": "requirements.lock", "requirements-dev.txt": "requirements-dev.lock"}
PIN = re.compile(r"\A([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)")


def ensure_venv(requirements: str) -> None:
    """Create .venv and install the lock of `requirements` unless the same lock is already installed."""
    lock = ROOT / LOCKS[requirements]
    digest = hashlib.sha256(lock.read_bytes())
    stamp = VENV / f".installed-{Path(requirements).stem}"
    if stamp.exists() and stamp.read_text() == digest.hexdigest() and PY.exists():
        return
    if not PY.exists():
        print(f"Creating a virtual environment in {VENV} …", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    run(PY, "-m", "pip", "install", "--disable-pip-version-check", "-q", "--require-hashes", "-r", lock)
    stamp.write_text(digest.hexdigest())


def pins(path: Path) -> dict[str, str]:
    """{normalised name: version} of the `name==version` lines of a requirements or lock file."""
    found = {}
    for line in path.read_text().splitlines():
        if match := PIN.match(line.strip()):
            found[re.sub(r"[-_.]+", "-", match.group(1)).lower()] = match.group(2)
    return found


def check_locks() -> None:
    """Fail when a pin in a requirements file is missing from its lock or differs from it: the
    list was edited and `python3 scripts/dev.py lock` not run."""
    stale = []
    for requirements, lock in LOCKS.items():
        locked = pins(ROOT / lock)
        for listed in ["requirements.txt", requirements]:
            for name, version in pins(ROOT / listed).items():
                if locked.get(name) != version:
                    stale.append(f"{listed}: {name}=={version}, {lock}: {locked.get(name, 'missing')}")
    if stale:
        sys.exit(
            "The lock files are out of step; run `python3 scripts/dev.py lock`:\n  " + "\n  ".join(stale)
        )


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


DEFAULT_ADDR = "127.0.0.1:8000"
# What `manage.py runserver` accepts: a port, or an IPv4 address, [IPv6 address] or host name and a port.
RUNSERVER_ADDR = re.compile(
    r"\A(?:(\d{1,3}(?:\.\d{1,3}){3}|\[[a-fA-F0-9:]+\]|[a-zA-Z0-9-]+(?:\.[a-zA-Z0-9-]+)*):)?(\d+)\Z"
)
ENV_LINE = re.compile(r"\A(?:export )?([A-Za-z_0-9]+)=(.*)\Z")  # as django-environ reads .env
# .env.example's SITE_URL, so what every .env written before serve kept SITE_URL in step said.
EXAMPLE_SITE_URL = "http://127.0.0.1:8000"
# Hosts runserver listens on that a browser does not open: every interface, and no host given.
BROWSER_HOST = {None: "127.0.0.1", "0": "127.0.0.1", "0.0.0.0": "127.0.0.1", "[::]": "[::1]"}  # noqa: S104
SITE_URL_NOTE = (
    "# scripts/dev.py serve sets SITE_URL to the address it runs on (RUNSERVER_ADDR); "
    "delete this line to keep your own."
)


def site_url_for(addr: str) -> str:
    """The address of `manage.py runserver addr` in a browser on this machine; a site listening
    on every interface (0.0.0.0, [::]) is opened on the loopback address."""
    match = RUNSERVER_ADDR.match(addr)
    if match is None:
        sys.exit(
            f"RUNSERVER_ADDR={addr!r} is not an address runserver takes: "
            "a port (8001) or an address and a port (0.0.0.0:8000, [::1]:8000, localhost:8000)."
        )
    host, port = match.groups()
    return f"http://{BROWSER_HOST.get(host, host)}:{port}"


def _unquote(value: str) -> str:
    if len(value) > 1 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def sync_site_url(env_file: Path, served: str) -> str:
    """Point .env's SITE_URL (the address emails and calendar files link to) at `served`, the
    address this run serves, and return the SITE_URL the site will use.

    serve owns a SITE_URL line under SITE_URL_NOTE and moves it on every run, so serving on
    another address than last time moves the links too. It takes over a missing line and an
    unmarked one still at .env.example's value (a .env from before serve did this). A SITE_URL in
    the environment, or one in .env without the note, is the user's own (a tunnel, a proxy) and
    is kept."""
    if "SITE_URL" in os.environ:
        return os.environ["SITE_URL"].rstrip("/")
    lines = env_file.read_text().splitlines()
    at = [i for i, line in enumerate(lines) if (m := ENV_LINE.match(line)) and m.group(1) == "SITE_URL"]
    if at:  # the last one is what django-environ takes
        i = at[-1]
        match = ENV_LINE.match(lines[i])
        current = _unquote(match.group(2) if match else "").rstrip("/")
        marked = i > 0 and lines[i - 1] == SITE_URL_NOTE
        if not marked and current != EXAMPLE_SITE_URL:
            return current
        if marked and current == served:
            return served
        lines[i] = f"SITE_URL={served}"
        if not marked:
            lines.insert(i, SITE_URL_NOTE)
    else:
        lines += [SITE_URL_NOTE, f"SITE_URL={served}"]
    env_file.write_text("\n".join(lines) + "\n")
    print(f"SITE_URL in .env is now {served}, the address served.", flush=True)
    return served


def serve(args: list[str]) -> None:
    addr = os.environ.get("RUNSERVER_ADDR", DEFAULT_ADDR)
    served = site_url_for(addr)
    ensure_venv("requirements.txt")
    ensure_env_file()
    # Before migrating: the first migration names the site after SITE_URL.
    site_url = sync_site_url(ROOT / ".env", served)
    manage = [PY, "manage.py"]
    run(*manage, "migrate", "--no-input", "-v", "0")
    run(*manage, "seed_demo", *args)
    print(f"\nOpen {served}/ (stop with Ctrl+C)", flush=True)
    if site_url != served:
        print(f"Emails and calendar files link to SITE_URL={site_url} (yours, kept).", flush=True)
    print(flush=True)
    os.execv(str(PY), [str(PY), "manage.py", "runserver", addr])


def test(args: list[str]) -> None:
    ensure_venv("requirements-dev.txt")
    os.execv(str(PY), [str(PY), "-m", "pytest", *args])


def lint(args: list[str]) -> None:
    check_locks()
    ensure_venv("requirements-dev.txt")
    run(PY, "-m", "ruff", "check", ".")
    run(PY, "-m", "ruff", "format", "--check", ".")
    # The Django plugin loads the settings; a developer's .env must not decide what is checked.
    env = {**os.environ, "USERGROUP_ENV_FILE": "/nonexistent/.env", "DEBUG": "1"}
    run(PY, "-m", "mypy", ".", env=env)


def lock(args: list[str]) -> None:
    """Resolve each requirements list again and write its lock with the hashes of every file
    (all platforms' wheels and the sdist), for any platform (--universal). Extra arguments go to
    uv: `lock --upgrade-package django` moves one package, `lock --upgrade` all of them."""
    ensure_venv("requirements-dev.txt")
    for requirements, lockfile in LOCKS.items():
        run(
            BIN / "uv",
            "pip",
            "compile",
            "--quiet",
            "--universal",
            "--generate-hashes",
            "--python-version",
            "3.11",
            *args,
            requirements,
            "-o",
            lockfile,
        )


COMMANDS = {"serve": serve, "test": test, "lint": lint, "lock": lock}

if __name__ == "__main__":
    name = sys.argv[1] if len(sys.argv) > 1 else "serve"
    if name not in COMMANDS:
        sys.exit(f"usage: python3 scripts/dev.py [{'|'.join(COMMANDS)}] [args…]")
    os.chdir(ROOT)
    COMMANDS[name](sys.argv[2:])
