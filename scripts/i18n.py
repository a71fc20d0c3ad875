#!/usr/bin/env python3
"""Keep the zh-hans catalogue complete.

    python scripts/i18n.py update   # makemessages for zh_Hans, then compile
    python scripts/i18n.py check    # fail if any string lacks a translation or the .mo is stale

Run inside the project's virtual environment (`.venv/bin/python scripts/i18n.py ...`).
Translations are written by hand in locale/zh_Hans/LC_MESSAGES/django.po.
"""

import subprocess
import sys
from pathlib import Path

import polib

ROOT = Path(__file__).resolve().parent.parent
PO = ROOT / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po"
IGNORE = [".venv", "static", "tests", "bench", "scripts", "var", "staticfiles"]


def untranslated(po: polib.POFile) -> list[str]:
    return [e.msgid for e in po if not e.obsolete and (not e.translated() or "fuzzy" in e.flags)]


def update() -> None:
    cmd = [sys.executable, "manage.py", "makemessages", "-l", "zh_Hans", "--no-obsolete"]
    for pattern in IGNORE:
        cmd += ["--ignore", pattern]
    subprocess.run(cmd, cwd=ROOT, check=True)
    compile_mo()


def compile_mo() -> None:
    po = polib.pofile(str(PO))
    for entry in po:  # "#|" hints from msgmerge are for translators of fuzzy entries only
        if "fuzzy" not in entry.flags:
            entry.previous_msgid = entry.previous_msgid_plural = entry.previous_msgctxt = None
    po.save()
    po.save_as_mofile(str(PO.with_suffix(".mo")))


def check() -> int:
    po = polib.pofile(str(PO))
    missing = untranslated(po)
    for msgid in missing:
        print(f"untranslated: {msgid!r}")
    hints = [e.msgid for e in po if (e.previous_msgid or e.previous_msgid_plural) and "fuzzy" not in e.flags]
    for msgid in hints:  # GNU gettext refuses some of these; `compile` removes them
        print(f"stale '#|' hint: {msgid!r} (run scripts/i18n.py compile)")
    missing += hints
    mo = polib.mofile(str(PO.with_suffix(".mo")))
    compiled = {(e.msgctxt, e.msgid): e.msgstr for e in mo}
    stale = [e.msgid for e in po if e.translated() and compiled.get((e.msgctxt, e.msgid)) != e.msgstr]
    for msgid in stale:
        print(f"not compiled: {msgid!r} (run scripts/i18n.py compile)")
    return 1 if missing or stale else 0


if __name__ == "__main__":
    action = sys.argv[1] if len(sys.argv) > 1 else "check"
    if action == "update":
        update()
    elif action == "compile":
        compile_mo()
    elif action == "check":
        sys.exit(check())
    else:
        sys.exit("usage: scripts/i18n.py [update|compile|check]")
