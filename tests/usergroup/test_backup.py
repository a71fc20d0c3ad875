"""manage.py backup / restore: round trips into a fresh database, media, refusals, pruning.

The round trips run on whichever database the suite runs on (SQLite by default, PostgreSQL in
CI); `test_sqlite_round_trip_of_a_database_file` covers SQLite on every run. pg_dump reads
through its own connection, so the tests that dump the test database are transactional: the
rows must be committed for it to see them.
"""

import copy
import hashlib
import io
import json
import re
import tarfile
from pathlib import Path

import psycopg2
import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.utils import load_backend

from community.models import Category
from community.services import reply, start_thread
from content.models import ContentView
from members.models import User
from points.models import LedgerEntry
from tests.factories import ContentFactory, MembershipFactory, UserFactory
from usergroup.backup import ARCHIVE_NAME, BackupError, create_backup, prune_backups, restore_backup

ROOT = Path(__file__).resolve().parents[2]
AVATAR = bytes(range(256)) * 40  # binary, so any text-mode mangling shows
VIDEO = b"\x00\x01video" * 5000


# --- helpers ---------------------------------------------------------------------------------


def wrapper_for(**changes):
    """A separate Django connection with the test database's settings, some changed."""
    settings_dict = copy.deepcopy(connection.settings_dict)
    settings_dict.update(changes)
    return load_backend(settings_dict["ENGINE"]).DatabaseWrapper(settings_dict, alias="backup-test")


def standalone(engine: str, **changes):
    """A connection of its own to another database (not the test database)."""
    settings_dict = {**copy.deepcopy(connection.settings_dict), "ENGINE": engine, "OPTIONS": {}, **changes}
    return load_backend(engine).DatabaseWrapper(settings_dict, alias="backup-standalone")


def sqlite_file(path: Path):
    return standalone("django.db.backends.sqlite3", NAME=str(path), USER="", PASSWORD="", HOST="", PORT="")


@pytest.fixture
def unblocked(django_db_blocker):
    """Tests that use only database files of their own, not the test database."""
    with django_db_blocker.unblock():
        yield


def row_counts(conn) -> dict[str, int]:
    with conn.cursor() as cursor:
        tables = conn.introspection.table_names(cursor)
        counts = {}
        for table in tables:
            cursor.execute(f"SELECT COUNT(*) FROM {conn.ops.quote_name(table)}")  # noqa: S608
            counts[table] = cursor.fetchone()[0]
    return counts


def files_under(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def populate() -> None:
    """Rows in several apps: members, memberships, content and views, a forum topic with a
    reply, and the points those posts earn."""
    author, replier = UserFactory(), UserFactory()
    MembershipFactory(user=author)
    item = ContentFactory()
    for member in (author, replier):
        ContentView.objects.create(content=item, user=member, dwell_seconds=40)
    category = Category.objects.create(name="General", slug="general")
    thread = start_thread(
        member=author, category=category, kind="discussion", title="Backups work", body="Hi"
    )
    reply(member=replier, thread=thread, body="They do.")


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.PRIVATE_MEDIA_ROOT = tmp_path / "private"
    (settings.MEDIA_ROOT / "avatars" / "2026").mkdir(parents=True)
    (settings.MEDIA_ROOT / "avatars" / "2026" / "a.png").write_bytes(AVATAR)
    (settings.MEDIA_ROOT / "covers").mkdir()  # empty folders survive too
    (settings.PRIVATE_MEDIA_ROOT / "videos").mkdir(parents=True)
    (settings.PRIVATE_MEDIA_ROOT / "videos" / "intro.mp4").write_bytes(VIDEO)
    return settings


@pytest.fixture
def fresh_database(tmp_path):
    """An empty database of the test database's kind, as a separate connection; dropped after."""
    if connection.vendor == "sqlite":
        target = sqlite_file(tmp_path / "fresh.sqlite3")
        yield target
        target.close()
        return
    name = f"{connection.settings_dict['NAME']}_restore"
    params = connection.settings_dict
    admin = psycopg2.connect(
        dbname=params["NAME"], user=params["USER"], password=params["PASSWORD"],
        host=params["HOST"], port=params["PORT"] or None,
    )  # fmt: skip
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        cursor.execute(f'CREATE DATABASE "{name}"')
    target = wrapper_for(NAME=name)
    try:
        yield target
    finally:
        target.close()
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def one_archive(folder: Path) -> Path:
    archives = [p for p in folder.iterdir() if ARCHIVE_NAME.match(p.name)]
    assert len(archives) == 1, list(folder.iterdir())
    return archives[0]


# --- round trips -----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_backup_restores_into_a_fresh_database_with_every_row_and_file(
    media, tmp_path, fresh_database, capsys
):
    populate()
    source = row_counts(connection)
    assert source["members_user"] >= 2 and source["community_post"] == 2
    assert source["content_contentview"] == 2 and source["points_ledgerentry"] >= 2
    assert source["members_membership"] >= 1
    emails = sorted(User.objects.values_list("email", flat=True))
    media_before = files_under(media.MEDIA_ROOT)
    private_before = files_under(media.PRIVATE_MEDIA_ROOT)

    out = tmp_path / "backups"
    out.mkdir()
    call_command("backup", output=str(out))
    archive = one_archive(out)
    assert list(out.iterdir()) == [archive]  # no temporary files left behind
    assert "Backup written" in capsys.readouterr().out

    with tarfile.open(archive) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))
        names = tar.getnames()
    assert manifest["database"]["vendor"] == connection.vendor
    assert manifest["database"]["file"] in names
    assert manifest["row_counts"] == source
    assert "0001_initial" in manifest["migrations"]["members"]
    assert manifest["app"]["version"] == "0.1.0"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z", manifest["created_at"])
    assert manifest["media"] == {
        "media": {"files": 1, "bytes": len(AVATAR)},
        "private": {"files": 1, "bytes": len(VIDEO)},
    }

    # The site moves: new, empty media folders and a fresh database.
    media.MEDIA_ROOT = tmp_path / "new-media"
    media.PRIVATE_MEDIA_ROOT = tmp_path / "new-private"
    result = restore_backup(archive=archive, connection=fresh_database)

    assert result.ok
    assert row_counts(fresh_database) == source
    assert {t.table: t.restored for t in result.tables} == source
    with fresh_database.cursor() as cursor:
        cursor.execute("SELECT email FROM members_user ORDER BY email")
        assert [r[0] for r in cursor.fetchall()] == emails
    assert result.media_files == 2
    assert files_under(media.MEDIA_ROOT) == media_before
    assert files_under(media.PRIVATE_MEDIA_ROOT) == private_before
    assert (media.MEDIA_ROOT / "covers").is_dir()
    assert result.pending_migrations == [] and result.unknown_migrations == []
    if fresh_database.vendor == "postgresql":  # the planner has statistics at once (docs/operations.md)
        with fresh_database.cursor() as cursor:
            cursor.execute("SELECT last_analyze FROM pg_stat_user_tables WHERE relname = 'members_user'")
            assert cursor.fetchone()[0] is not None


@pytest.mark.django_db(transaction=True)
def test_restore_command_refuses_a_database_with_rows_then_replaces_it_with_yes(media, tmp_path, capsys):
    populate()
    before = row_counts(connection)
    out = tmp_path / "backups"
    out.mkdir()
    call_command("backup", output=str(out), no_media=True)
    archive = one_archive(out)

    # Life goes on after the backup: the points ledger is lost, a member joins.
    LedgerEntry.objects.all().delete()
    UserFactory()
    with pytest.raises(CommandError, match=r"not empty.*--yes"):
        call_command("restore", str(archive))
    assert LedgerEntry.objects.count() == 0  # refused: nothing changed

    call_command("restore", str(archive), yes=True)
    printed = capsys.readouterr().out
    assert row_counts(connection) == before
    users = before["members_user"]
    assert re.search(rf"members_user\s+{users}\s+{users}\n", printed)
    assert f"all {len(before)} tables match" in printed
    assert (media.MEDIA_ROOT / "avatars" / "2026" / "a.png").read_bytes() == AVATAR  # --no-media: untouched


def test_sqlite_round_trip_of_a_database_file(settings, tmp_path, unblocked):
    """SQLite on every run, whatever the suite's database: a live file database (WAL, with a
    connection holding it open) copied through the online backup API and restored elsewhere."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.PRIVATE_MEDIA_ROOT = tmp_path / "private"
    source = sqlite_file(tmp_path / "site.sqlite3")
    with source.cursor() as cursor:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("CREATE TABLE member (id INTEGER PRIMARY KEY, email TEXT)")
        cursor.execute("CREATE TABLE post (id INTEGER PRIMARY KEY, member_id INTEGER, body TEXT)")
        cursor.executemany(
            "INSERT INTO member (email) VALUES (%s)", [(f"m{i}@example.com",) for i in range(50)]
        )
        cursor.executemany(
            "INSERT INTO post (member_id, body) VALUES (%s, %s)", [(i % 50, "x" * i) for i in range(120)]
        )
    # The rows are still in the -wal file: a plain copy of site.sqlite3 would miss them.
    assert (tmp_path / "site.sqlite3-wal").stat().st_size > 0
    out = tmp_path / "out"
    out.mkdir()
    result = create_backup(output_dir=out, connection=source)
    assert result.manifest["row_counts"] == {"member": 50, "post": 120}
    assert result.manifest["migrations"] == {}

    target = sqlite_file(tmp_path / "restored.sqlite3")
    restored = restore_backup(archive=result.path, connection=target)
    assert restored.ok and [(t.table, t.restored) for t in restored.tables] == [("member", 50), ("post", 120)]
    with target.cursor() as cursor:
        cursor.execute("SELECT SUM(LENGTH(body)) FROM post")
        assert cursor.fetchone()[0] == sum(range(120))
    source.close()
    target.close()


# --- refusals --------------------------------------------------------------------------------


@pytest.fixture
def archive_and_target(settings, tmp_path, unblocked):
    """A valid archive (from a small SQLite file), a target database holding a sentinel row,
    and empty media folders: a refused restore must leave all three as they are."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.PRIVATE_MEDIA_ROOT = tmp_path / "private"
    (tmp_path / "media").mkdir()
    (tmp_path / "media" / "kept.txt").write_text("kept")
    source = sqlite_file(tmp_path / "source.sqlite3")
    with source.cursor() as cursor:
        cursor.execute("CREATE TABLE member (id INTEGER PRIMARY KEY, email TEXT)")
        cursor.execute("INSERT INTO member (email) VALUES ('a@example.com')")
    out = tmp_path / "out"
    out.mkdir()
    archive = create_backup(output_dir=out, connection=source).path
    source.close()
    target = sqlite_file(tmp_path / "target.sqlite3")
    with target.cursor() as cursor:
        cursor.execute("CREATE TABLE sentinel (id INTEGER PRIMARY KEY)")
        cursor.execute("INSERT INTO sentinel DEFAULT VALUES")
    yield archive, target
    target.close()


def members_of(archive: Path) -> list[tuple[tarfile.TarInfo, bytes | None]]:
    with tarfile.open(archive) as tar:
        return [(m, _content(tar, m)) for m in tar.getmembers()]


def _content(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes | None:
    if not member.isfile():
        return None
    source = tar.extractfile(member)
    assert source is not None  # a regular file
    return source.read()


def write_tar(path: Path, members) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def file_member(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def assert_untouched(target, tmp_path):
    with target.cursor() as cursor:
        assert target.introspection.table_names(cursor) == ["sentinel"]
    assert sorted(p.name for p in (tmp_path / "media").iterdir()) == ["kept.txt"]
    assert not (tmp_path / "private").exists()
    assert not (tmp_path / "escaped.txt").exists()


def test_the_valid_archive_restores(archive_and_target, tmp_path):
    # The refusals below use this archive, changed: unchanged, it restores (with --yes).
    archive, target = archive_and_target
    with pytest.raises(BackupError, match="not empty; rows in sentinel"):
        restore_backup(archive=archive, connection=target)
    assert restore_backup(archive=archive, connection=target, confirmed=True).ok


@pytest.mark.parametrize(
    "damage",
    ["not a tarball", "truncated", "empty file", "no manifest", "manifest not json", "checksum"],
)
def test_a_damaged_archive_is_refused_and_nothing_written(archive_and_target, tmp_path, damage):
    archive, target = archive_and_target
    bad = tmp_path / "bad.tar.gz"
    if damage == "not a tarball":
        bad.write_bytes(b"PK\x03\x04 this is a zip, or anything else" * 100)
        expected = "not a readable backup archive"
    elif damage == "truncated":
        bad.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
        expected = "not a readable backup archive"
    elif damage == "empty file":
        bad.write_bytes(b"")
        expected = "not a readable backup archive"
    elif damage == "no manifest":
        write_tar(bad, [m for m in members_of(archive) if m[0].name != "manifest.json"])
        expected = "no manifest.json"
    elif damage == "manifest not json":
        members = [m for m in members_of(archive) if m[0].name != "manifest.json"]
        write_tar(bad, [*members, file_member("manifest.json", b"{not json")])
        expected = "not valid JSON"
    else:
        members = members_of(archive)
        manifest = json.loads(next(d for m, d in members if m.name == "manifest.json"))
        manifest["database"]["sha256"] = "0" * 64
        members = [m for m in members if m[0].name != "manifest.json"]
        write_tar(bad, [*members, file_member("manifest.json", json.dumps(manifest).encode())])
        expected = "does not match the checksum"
    with pytest.raises(BackupError, match=expected):
        restore_backup(archive=bad, connection=target, confirmed=True)
    assert_untouched(target, tmp_path)


@pytest.mark.parametrize(
    "name",
    ["media/../../escaped.txt", "../escaped.txt", "/tmp/escaped.txt", "media/a/../../../escaped.txt"],  # noqa: S108
)
def test_a_tar_with_paths_leaving_its_folders_is_refused(archive_and_target, tmp_path, name):
    archive, target = archive_and_target
    # The bad member comes last, after the database and the manifest: checking happens before
    # anything is written, not member by member.
    bad = write_tar(tmp_path / "bad.tar.gz", [*members_of(archive), file_member(name, b"gotcha")])
    with pytest.raises(BackupError, match="unsafe path"):
        restore_backup(archive=bad, connection=target, confirmed=True)
    assert_untouched(target, tmp_path)


@pytest.mark.parametrize("kind", [tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.CHRTYPE])
def test_links_and_devices_in_the_tar_are_refused(archive_and_target, tmp_path, kind):
    archive, target = archive_and_target
    link = tarfile.TarInfo("media/passwd")
    link.type, link.linkname = kind, "/etc/passwd"
    bad = write_tar(tmp_path / "bad.tar.gz", [*members_of(archive), (link, None)])
    with pytest.raises(BackupError, match="not a plain file or folder"):
        restore_backup(archive=bad, connection=target, confirmed=True)
    assert_untouched(target, tmp_path)


def test_an_archive_of_another_database_kind_is_refused(archive_and_target, tmp_path):
    archive, target = archive_and_target
    members = members_of(archive)
    dump = b"PGDMP fake"
    manifest = json.loads(next(d for m, d in members if m.name == "manifest.json"))
    manifest["database"].update(vendor="postgresql", file="database/postgres.dump")
    manifest["database"]["sha256"] = hashlib.sha256(dump).hexdigest()
    bad = write_tar(
        tmp_path / "pg.tar.gz",
        [
            file_member("database/postgres.dump", dump),
            file_member("manifest.json", json.dumps(manifest).encode()),
        ],
    )
    with pytest.raises(
        BackupError, match="holds a postgresql database but the configured database is sqlite"
    ):
        restore_backup(archive=bad, connection=target, confirmed=True)
    assert_untouched(target, tmp_path)


def test_restore_command_reports_a_missing_archive(tmp_path):
    with pytest.raises(CommandError, match="does not exist"):
        call_command("restore", str(tmp_path / "nope.tar.gz"))


# --- backup arguments and failures -----------------------------------------------------------


def test_backup_command_validates_its_arguments(tmp_path, monkeypatch):
    with pytest.raises(CommandError, match="does not exist"):
        call_command("backup", output=str(tmp_path / "missing"))
    (tmp_path / "file").write_text("")
    with pytest.raises(CommandError, match="is not a directory"):
        call_command("backup", output=str(tmp_path / "file"))
    with pytest.raises(CommandError, match="--keep must be 1 or more"):
        call_command("backup", output=str(tmp_path), keep=0)
    monkeypatch.setattr("usergroup.backup.os.access", lambda path, mode: False)
    with pytest.raises(CommandError, match="is not writable"):
        call_command("backup", output=str(tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_a_failed_backup_leaves_no_archive_and_no_temporary_files(settings, tmp_path, monkeypatch, unblocked):
    settings.MEDIA_ROOT = tmp_path / "media"
    (tmp_path / "media").mkdir()
    (tmp_path / "media" / "a.txt").write_text("a")
    source = sqlite_file(tmp_path / "site.sqlite3")
    with source.cursor() as cursor:
        cursor.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("usergroup.backup._app_version", broken)  # fails after the media went in
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(OSError, match="disk full"):
        create_backup(output_dir=out, connection=source)
    assert list(out.iterdir()) == []
    source.close()


def test_a_missing_pg_dump_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no pg_dump on it
    postgres = standalone("django.db.backends.postgresql", NAME="unused", HOST="127.0.0.1")
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(BackupError, match="pg_dump was not found on PATH"):
        create_backup(output_dir=out, connection=postgres)
    assert list(out.iterdir()) == []


def test_keep_prunes_only_older_backup_archives(tmp_path, unblocked):
    out = tmp_path / "out"
    out.mkdir()
    old = [out / f"usergroup-backup-2026010{d}T030000Z.tar.gz" for d in range(1, 5)]
    for path in old:
        path.write_bytes(b"old")
    (out / "notes.txt").write_text("mine")
    (out / "usergroup-backup-latest.tar.gz").write_text("not ours: another name")
    source = sqlite_file(tmp_path / "site.sqlite3")
    with source.cursor() as cursor:
        cursor.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")
    result = create_backup(output_dir=out, connection=source, keep=2)
    source.close()
    assert sorted(result.pruned) == old[:3]
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [result.path.name, old[3].name, "notes.txt", "usergroup-backup-latest.tar.gz"]
    )
    assert prune_backups(output_dir=out, keep=5) == []


@pytest.mark.django_db(transaction=True)
def test_the_scheduled_backup_task_writes_into_backup_dir_and_keeps_backup_keep(settings, tmp_path):
    from usergroup.tasks import backup

    settings.BACKUP_DIR = tmp_path / "backups"
    settings.BACKUP_KEEP = 1
    settings.MEDIA_ROOT = settings.PRIVATE_MEDIA_ROOT = tmp_path / "none"
    (settings.BACKUP_DIR).mkdir()
    (settings.BACKUP_DIR / "usergroup-backup-20000101T000000Z.tar.gz").write_bytes(b"old")
    path = Path(backup())  # the task body, run here as a worker would run it
    assert path.parent == settings.BACKUP_DIR and ARCHIVE_NAME.match(path.name)
    assert [p.name for p in settings.BACKUP_DIR.iterdir()] == [path.name]


# --- the Docker image ------------------------------------------------------------------------


def test_the_image_has_the_pg_dump_of_the_compose_postgres_major_version():
    """pg_dump refuses a newer server, and a newer pg_dump writes dumps an older server's
    restore may not read: the web image's client must match the compose database."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    compose = (ROOT / "docker-compose.yml").read_text()
    client = re.search(r"^ARG PG_MAJOR=(\d+)$", dockerfile, re.M)
    server = re.search(r"^\s+image: postgres:(\d+)", compose, re.M)
    assert client and server
    assert client.group(1) == server.group(1)
    assert "postgresql-client-${PG_MAJOR}" in dockerfile
