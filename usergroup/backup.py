"""Backups of the whole site (database and uploaded files) into one archive, and restoring one.

An archive `usergroup-backup-<UTC time>.tar.gz` holds:

    database/postgres.dump   `pg_dump --format=custom` (PostgreSQL), or
    database/db.sqlite3      a copy made with SQLite's online backup API
    media/...                MEDIA_ROOT (avatars, covers)
    private/...              PRIVATE_MEDIA_ROOT (videos, attachments)
    manifest.json            when, which code, which database, migrations, rows per table

The row counts in the manifest describe exactly the dumped data: on PostgreSQL they are read in a
transaction whose snapshot pg_dump shares (`--snapshot`), on SQLite from the copy itself. A
restore compares the restored tables with them.

An archive is written under a hidden temporary name and renamed when complete, so a file with
the archive name is always a whole backup. Restoring reads the whole archive and checks every
member before it writes anything.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import json
import os
import re
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
import tomllib
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

import django
from django.conf import settings
from django.db import DatabaseError, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.postgresql.client import DatabaseClient as PostgresClient
from django.db.migrations.loader import MigrationLoader
from django.db.utils import load_backend

FORMAT = 1
ARCHIVE_PREFIX = "usergroup-backup-"
ARCHIVE_SUFFIX = ".tar.gz"
ARCHIVE_NAME = re.compile(r"^usergroup-backup-\d{8}T\d{6}Z\.tar\.gz$")
MANIFEST = "manifest.json"
DATABASE_FILES = {"postgresql": "database/postgres.dump", "sqlite": "database/db.sqlite3"}
# Archive folder -> the setting naming the folder it is restored into.
MEDIA_FOLDERS = {"media": "MEDIA_ROOT", "private": "PRIVATE_MEDIA_ROOT"}
TOP_LEVEL = {MANIFEST, "database", *MEDIA_FOLDERS}
CHUNK = 1024 * 1024


class BackupError(Exception):
    """A backup or restore that cannot be done; the message says why and what to do."""


@dataclass(frozen=True)
class BackupResult:
    path: Path
    manifest: dict[str, Any]
    pruned: list[Path] = field(default_factory=list)


@dataclass(frozen=True)
class TableCount:
    table: str
    archived: int
    restored: int | None  # None: the table is missing after the restore

    @property
    def ok(self) -> bool:
        return self.archived == self.restored


@dataclass(frozen=True)
class RestoreResult:
    manifest: dict[str, Any]
    tables: list[TableCount]
    media_files: int
    # Migrations this code has that the restored database lacks: run `migrate`.
    pending_migrations: list[str]
    # Migrations the restored database has that this code does not know: a backup of newer code.
    unknown_migrations: list[str]

    @property
    def ok(self) -> bool:
        return all(t.ok for t in self.tables)


# --- Backup --------------------------------------------------------------------------------


def create_backup(
    *,
    output_dir: Path,
    include_media: bool = True,
    keep: int | None = None,
    connection: BaseDatabaseWrapper | None = None,
    now: datetime | None = None,
) -> BackupResult:
    """Write one archive of the database (and media) into `output_dir`; prune to `keep` archives."""
    connection = connection or connections["default"]
    output_dir = _writable_dir(Path(output_dir))
    if keep is not None and keep < 1:
        raise BackupError(f"--keep must be 1 or more, not {keep}.")
    vendor = _supported_vendor(connection)
    stamp = (now or datetime.now(UTC)).astimezone(UTC)
    final = output_dir / f"{ARCHIVE_PREFIX}{stamp:%Y%m%dT%H%M%SZ}{ARCHIVE_SUFFIX}"
    if final.exists():
        raise BackupError(f"{final} already exists; wait a second and run the backup again.")

    _remove_leftovers(output_dir, now=stamp)
    partial = output_dir / f".{final.name}.partial"
    work = Path(tempfile.mkdtemp(prefix=".usergroup-backup-", dir=output_dir))
    try:
        dump = work / PurePosixPath(DATABASE_FILES[vendor]).name
        dumper = _dump_postgres if vendor == "postgresql" else _dump_sqlite
        with _database_errors():
            database, state = dumper(connection, dump)
        database.update(file=DATABASE_FILES[vendor], sha256=_sha256(dump), bytes=dump.stat().st_size)

        with open(partial, "wb") as raw:
            with tarfile.open(fileobj=raw, mode="w:gz") as tar:
                tar.add(dump, arcname=DATABASE_FILES[vendor], recursive=False)
                media = None
                if include_media:
                    media = {
                        folder: _add_tree(tar, Path(getattr(settings, name)), folder, skip=output_dir)
                        for folder, name in MEDIA_FOLDERS.items()
                    }
                manifest = {
                    "format": FORMAT,
                    "created_at": stamp.isoformat().replace("+00:00", "Z"),
                    "app": _app_version(),
                    "django": django.get_version(),
                    "database": database,
                    "migrations": state.migrations,
                    "row_counts": state.row_counts,
                    "media": media,
                }
                body = json.dumps(manifest, indent=2, sort_keys=True).encode()
                info = tarfile.TarInfo(MANIFEST)
                info.size, info.mtime, info.mode = len(body), int(stamp.timestamp()), 0o644
                tar.addfile(info, io.BytesIO(body))
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(partial, final)
        _fsync_dir(output_dir)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)

    pruned = prune_backups(output_dir=output_dir, keep=keep, protect=final) if keep else []
    return BackupResult(path=final, manifest=manifest, pruned=pruned)


def prune_backups(*, output_dir: Path, keep: int, protect: Path | None = None) -> list[Path]:
    """Delete all but the newest `keep` archives (by the time in their names) in `output_dir`."""
    archives = sorted((p for p in output_dir.iterdir() if ARCHIVE_NAME.match(p.name)), reverse=True)
    doomed = [p for p in archives[keep:] if p != protect]
    for path in doomed:
        path.unlink(missing_ok=True)
    return doomed


def _remove_leftovers(output_dir: Path, *, now: datetime) -> None:
    """Delete the temporary files of backups killed more than a day ago (a running backup's
    are younger)."""
    for path in output_dir.glob(f".{ARCHIVE_PREFIX}*"):
        try:
            if now.timestamp() - path.lstat().st_mtime > 24 * 60 * 60:
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
                else:
                    path.unlink()
        except OSError:
            continue


def _writable_dir(path: Path) -> Path:
    if not path.exists():
        raise BackupError(f"The output directory {path} does not exist.")
    if not path.is_dir():
        raise BackupError(f"{path} is not a directory.")
    if not os.access(path, os.W_OK | os.X_OK):
        raise BackupError(f"The output directory {path} is not writable by this user.")
    return path.resolve()


def _supported_vendor(connection: BaseDatabaseWrapper) -> str:
    if connection.vendor not in DATABASE_FILES:
        raise BackupError(f"Backups support PostgreSQL and SQLite, not {connection.vendor}.")
    return connection.vendor


@dataclass(frozen=True)
class _State:
    row_counts: dict[str, int]
    migrations: dict[str, list[str]]


def _dump_sqlite(connection: BaseDatabaseWrapper, dest: Path) -> tuple[dict[str, Any], _State]:
    # The online backup API copies a consistent state even while others write (and includes
    # what still sits in the WAL file); copying the file itself would not.
    connection.ensure_connection()
    target = sqlite3.connect(dest)
    try:
        connection.connection.backup(target)
    finally:
        target.close()
    copy_of = _standalone(connection, NAME=str(dest), OPTIONS={})
    try:
        with copy_of.cursor() as cursor:
            state = _database_state(copy_of, cursor)
    finally:
        copy_of.close()
    return {"vendor": "sqlite", "sqlite_version": sqlite3.sqlite_version}, state


def _dump_postgres(connection: BaseDatabaseWrapper, dest: Path) -> tuple[dict[str, Any], _State]:
    pg_dump = _pg_tool("pg_dump")
    # A connection of our own holds a repeatable-read snapshot that pg_dump shares, so the row
    # counts and migrations in the manifest are exactly those of the dump.
    reader = _standalone(connection)
    try:
        with reader.cursor() as cursor:
            server_major = reader.pg_version // 10000  # type: ignore[attr-defined]  # PostgreSQL backend only
            tool_major = _tool_major(pg_dump)
            if tool_major < server_major:
                raise BackupError(
                    f"pg_dump is version {tool_major} but the server runs PostgreSQL {server_major}; "
                    f"install postgresql-client-{server_major} (pg_dump cannot dump a newer server)."
                )
            cursor.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            cursor.execute("SELECT pg_export_snapshot()")
            snapshot = cursor.fetchone()[0]
            state = _database_state(reader, cursor)
            args, env = _pg_args(connection.settings_dict)
            _run(
                [pg_dump, "--format=custom", f"--snapshot={snapshot}", f"--file={dest}", *args],
                env=env,
                what="pg_dump",
            )
            cursor.execute("ROLLBACK")
    finally:
        reader.close()
    return {
        "vendor": "postgresql",
        "server_version": reader.pg_version,  # type: ignore[attr-defined]  # PostgreSQL backend only
        "pg_dump_version": _tool_version(pg_dump),
    }, state


def _database_state(connection: BaseDatabaseWrapper, cursor) -> _State:
    quote = connection.ops.quote_name
    tables = sorted(connection.introspection.table_names(cursor))
    counts = {}
    for table in tables:
        cursor.execute(f"SELECT COUNT(*) FROM {quote(table)}")  # noqa: S608 - names from the catalogue
        counts[table] = cursor.fetchone()[0]
    migrations: dict[str, list[str]] = {}
    if "django_migrations" in tables:
        cursor.execute("SELECT app, name FROM django_migrations ORDER BY app, name")
        for app, name in cursor.fetchall():
            migrations.setdefault(app, []).append(name)
    return _State(row_counts=counts, migrations=migrations)


def _add_tree(tar: tarfile.TarFile, root: Path, arcname: str, *, skip: Path) -> dict[str, int]:
    """Add the regular files under `root`, leaving out symlinks, special files and `skip`
    (the backups themselves, should they be kept inside a media folder)."""
    files = size = 0
    if not root.is_dir():
        return {"files": 0, "bytes": 0}
    skipped = {skip.resolve()}
    for folder, dirnames, filenames in os.walk(root):
        here = Path(folder)
        dirnames[:] = sorted(
            d for d in dirnames if not (here / d).is_symlink() and (here / d).resolve() not in skipped
        )
        rel = here.relative_to(root)
        if rel != Path("."):
            tar.add(here, arcname=f"{arcname}/{rel.as_posix()}", recursive=False)
        for name in sorted(filenames):
            path = here / name
            if path.is_symlink() or not path.is_file():
                continue
            try:
                info = tar.gettarinfo(path, arcname=f"{arcname}/{(rel / name).as_posix()}")
                with open(path, "rb") as fh:
                    tar.addfile(info, fh)
            except FileNotFoundError:  # deleted by the site while we walked
                continue
            files += 1
            size += info.size
    return {"files": files, "bytes": size}


def _app_version() -> dict[str, str | None]:
    version = None
    pyproject = Path(settings.BASE_DIR) / "pyproject.toml"
    with contextlib.suppress(OSError, KeyError, tomllib.TOMLDecodeError):
        version = tomllib.loads(pyproject.read_text())["project"]["version"]
    commit = None
    git = shutil.which("git")
    if git and (Path(settings.BASE_DIR) / ".git").exists():
        try:
            out = subprocess.run(  # noqa: S603 - fixed arguments
                [git, "-C", str(settings.BASE_DIR), "rev-parse", "HEAD"],
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            )
            if out.returncode == 0:
                commit = out.stdout.strip() or None
        except (OSError, subprocess.TimeoutExpired):
            pass
    return {"version": version, "git_commit": commit}


# --- Restore -------------------------------------------------------------------------------


def restore_backup(
    *,
    archive: Path,
    confirmed: bool = False,
    connection: BaseDatabaseWrapper | None = None,
    progress: Callable[[str], None] | None = None,
) -> RestoreResult:
    """Restore `archive` into the database of `connection` and the media folders.

    Refuses (BackupError, nothing written) when the archive is not a whole, valid backup, was
    made from another kind of database, or the target database holds rows and `confirmed` is
    false.
    """
    connection = connection or connections["default"]
    say = progress or (lambda _message: None)
    archive = Path(archive)
    vendor = _supported_vendor(connection)
    if connection.in_atomic_block:  # our own open transaction would hold locks the restore needs
        raise BackupError("Cannot restore inside a transaction.")
    if vendor == "postgresql":
        pg_restore = _pg_tool("pg_restore")

    with _database_errors(), tempfile.TemporaryDirectory(prefix="usergroup-restore-") as staging:
        say(f"Checking {archive.name} ...")
        manifest, dump = _check_archive(archive, Path(staging))
        archived_vendor = manifest["database"]["vendor"]
        if archived_vendor != vendor:
            raise BackupError(
                f"The archive holds a {archived_vendor} database but the configured database is "
                f"{vendor}; restore it into a {archived_vendor} database."
            )
        if not confirmed:
            occupied = _tables_with_rows(connection)
            if occupied:
                listed = ", ".join(f"{t} ({n})" for t, n in occupied[:5])
                more = f" and {len(occupied) - 5} more" if len(occupied) > 5 else ""
                raise BackupError(
                    f"The database {connection.settings_dict['NAME']} is not empty; rows in {listed}{more}. "
                    "Restoring replaces its data; run again with --yes to do that."
                )

        say(f"Restoring the {vendor} database ...")
        if vendor == "postgresql":
            connection.close()
            args, env = _pg_args(connection.settings_dict)
            _run(
                [
                    pg_restore,
                    "--clean",
                    "--if-exists",
                    "--no-owner",
                    "--single-transaction",
                    *args,
                    str(dump),
                ],
                env=env,
                what="pg_restore",
            )
            # A restored database has no planner statistics until autovacuum gets to it, and
            # without them PostgreSQL picks plans tens of times slower (docs/performance.md).
            say("Analysing the restored tables ...")
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE")
        else:
            _restore_sqlite(connection, dump)

    media_files = 0
    if manifest.get("media"):
        say("Unpacking media files ...")
        media_files = _unpack_media(archive)

    with _database_errors():
        tables = _compare_counts(connection, manifest["row_counts"])
    pending, unknown = _migration_drift(manifest["migrations"])
    return RestoreResult(
        manifest=manifest,
        tables=tables,
        media_files=media_files,
        pending_migrations=pending,
        unknown_migrations=unknown,
    )


def _check_archive(archive: Path, staging: Path) -> tuple[dict[str, Any], Path]:
    """Read every member of the archive; return its manifest and the database file, staged.

    Raises BackupError for anything but a whole archive of the expected shape, before the
    caller writes anything.
    """
    if not archive.is_file():
        raise BackupError(f"{archive} does not exist or is not a file.")
    manifest_body = None
    staged: dict[str, tuple[Path, str]] = {}
    seen: set[str] = set()
    try:
        with tarfile.open(archive, mode="r:*") as tar:
            for member in tar:
                name = _checked_name(member)
                if name in seen:
                    raise BackupError(f"The archive holds {name!r} twice.")
                seen.add(name)
                if not member.isfile():
                    continue
                source = tar.extractfile(member)
                if source is None:  # only for what is not a regular file, skipped above
                    continue
                if name == MANIFEST:
                    if member.size > 50 * CHUNK:
                        raise BackupError("The archive's manifest.json is implausibly large.")
                    manifest_body = source.read()
                elif name.startswith("database/"):
                    path = staging / PurePosixPath(name).name
                    digest = hashlib.sha256()
                    with open(path, "wb") as out:
                        for block in _blocks(source):
                            digest.update(block)
                            out.write(block)
                    staged[name] = (path, digest.hexdigest())
                else:
                    for _block in _blocks(source):  # read it all: a damaged stream fails here
                        pass
    except BackupError:
        raise
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise BackupError(f"{archive} is not a readable backup archive ({exc}).") from None

    if manifest_body is None:
        raise BackupError(f"{archive} has no {MANIFEST}; it is not a usergroup backup.")
    manifest = _checked_manifest(manifest_body)
    name = manifest["database"]["file"]
    if name not in staged:
        raise BackupError(f"The archive's manifest names {name} but the archive does not hold it.")
    path, sha256 = staged[name]
    if sha256 != manifest["database"]["sha256"]:
        raise BackupError(f"{name} in the archive does not match the checksum in its manifest.")
    return manifest, path


def _checked_name(member: tarfile.TarInfo) -> str:
    name = member.name
    path = PurePosixPath(name)
    if (
        not name
        or "\\" in name
        or "\x00" in name
        or path.is_absolute()
        or any(part in {"..", ""} for part in name.rstrip("/").split("/"))
    ):
        raise BackupError(f"The archive holds an unsafe path {name!r}; refusing to restore it.")
    if path.parts[0] not in TOP_LEVEL:
        raise BackupError(f"The archive holds {name!r}, which is not part of a usergroup backup.")
    if not (member.isfile() or member.isdir()):
        raise BackupError(f"The archive holds {name!r}, which is not a plain file or folder.")
    if member.isfile() and path.parts[0] == "database" and len(path.parts) != 2:
        raise BackupError(f"The archive holds an unexpected database file {name!r}.")
    return path.as_posix()


def _checked_manifest(body: bytes) -> dict[str, Any]:
    try:
        manifest = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BackupError(f"The archive's {MANIFEST} is not valid JSON ({exc}).") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(f"The archive's {MANIFEST} is not a format-{FORMAT} usergroup manifest.")
    database = manifest.get("database")
    counts = manifest.get("row_counts")
    migrations = manifest.get("migrations")
    if (
        not isinstance(database, dict)
        or database.get("vendor") not in DATABASE_FILES
        or database.get("file") != DATABASE_FILES[database["vendor"]]
        or not isinstance(database.get("sha256"), str)
        or not isinstance(counts, dict)
        or not all(isinstance(k, str) and type(v) is int and v >= 0 for k, v in counts.items())
        or not isinstance(migrations, dict)
        or not all(isinstance(v, list) for v in migrations.values())
    ):
        raise BackupError(f"The archive's {MANIFEST} is incomplete or damaged.")
    return manifest


def _tables_with_rows(connection: BaseDatabaseWrapper) -> list[tuple[str, int]]:
    quote = connection.ops.quote_name
    occupied = []
    with connection.cursor() as cursor:
        for table in sorted(connection.introspection.table_names(cursor)):
            cursor.execute(f"SELECT COUNT(*) FROM {quote(table)}")  # noqa: S608 - names from the catalogue
            rows = cursor.fetchone()[0]
            if rows:
                occupied.append((table, rows))
    return occupied


def _restore_sqlite(connection: BaseDatabaseWrapper, dump: Path) -> None:
    # The backup API writes the copy into the configured database page by page under SQLite's
    # own locks, in one step: no stale -wal file can be replayed over it afterwards, as it
    # could after replacing the file on disk.
    source = sqlite3.connect(dump)
    try:
        integrity = source.execute("PRAGMA integrity_check").fetchone()[0]
        if integrity != "ok":
            raise BackupError(f"The SQLite database in the archive is damaged: {integrity}.")
        connection.ensure_connection()
        source.backup(connection.connection)
    except sqlite3.Error as exc:
        raise BackupError(f"Restoring the SQLite database failed: {exc}.") from None
    finally:
        source.close()
    connection.close()


def _unpack_media(archive: Path) -> int:
    """Write the media members into MEDIA_ROOT / PRIVATE_MEDIA_ROOT (already checked names)."""
    roots = {folder: Path(getattr(settings, name)) for folder, name in MEDIA_FOLDERS.items()}
    written = 0
    with tarfile.open(archive, mode="r:*") as tar:
        for member in tar:
            parts = PurePosixPath(_checked_name(member)).parts  # checked again: the file may have changed
            if parts[0] not in roots:
                continue
            root = roots[parts[0]]
            target = root.joinpath(*parts[1:])
            if not target.resolve().is_relative_to(root.resolve()):  # a symlink on the way out
                raise BackupError(f"{member.name} would be written outside {root}.")
            if member.isdir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            # Each file appears whole or not at all.
            fd, temp = tempfile.mkstemp(prefix=".restore-", dir=target.parent)
            try:
                with os.fdopen(fd, "wb") as out:
                    for block in _blocks(tar.extractfile(member)):
                        out.write(block)
                os.chmod(temp, 0o644)
                os.replace(temp, target)
            except BaseException:
                Path(temp).unlink(missing_ok=True)
                raise
            written += 1
    return written


def _compare_counts(connection: BaseDatabaseWrapper, archived: dict[str, int]) -> list[TableCount]:
    quote = connection.ops.quote_name
    result = []
    with connection.cursor() as cursor:
        present = set(connection.introspection.table_names(cursor))
        for table, expected in sorted(archived.items()):
            restored = None
            if table in present:
                cursor.execute(f"SELECT COUNT(*) FROM {quote(table)}")  # noqa: S608 - checked above
                restored = cursor.fetchone()[0]
            result.append(TableCount(table=table, archived=expected, restored=restored))
    return result


def _migration_drift(archived: dict[str, list[str]]) -> tuple[list[str], list[str]]:
    on_disk = set(MigrationLoader(None, ignore_no_migrations=True).disk_migrations)
    restored = {(app, name) for app, names in archived.items() for name in names}
    ours = {app for app, _ in on_disk}
    pending = sorted(f"{app}.{name}" for app, name in on_disk - restored)
    unknown = sorted(f"{app}.{name}" for app, name in restored - on_disk if app in ours)
    return pending, unknown


# --- Shared --------------------------------------------------------------------------------


def _standalone(connection: BaseDatabaseWrapper, **changes: Any) -> BaseDatabaseWrapper:
    """A separate connection with the settings of `connection`, some of them changed."""
    settings_dict = copy.deepcopy(connection.settings_dict)
    settings_dict.update(changes)
    backend = load_backend(settings_dict["ENGINE"])
    return backend.DatabaseWrapper(settings_dict, alias=f"{connection.alias}-backup")


@contextlib.contextmanager
def _database_errors() -> Iterator[None]:
    """A database that cannot be reached or read is reported like any other failure."""
    try:
        yield
    except (DatabaseError, sqlite3.Error) as exc:
        raise BackupError(f"Database error: {str(exc).strip()}") from None


def _pg_tool(name: str) -> str:
    path = shutil.which(name)
    if not path:
        raise BackupError(
            f"{name} was not found on PATH. Install the PostgreSQL client tools of the server's "
            "major version (Debian/Ubuntu: postgresql-client-16); the project's Docker image has them."
        )
    return path


def _tool_version(tool: str) -> str:
    out = subprocess.run([tool, "--version"], capture_output=True, text=True, check=False)  # noqa: S603
    return out.stdout.strip()


def _tool_major(tool: str) -> int:
    match = re.search(r"(\d+)(?:\.\d+)?", _tool_version(tool))
    return int(match.group(1)) if match else 0


def _pg_args(settings_dict: dict[str, Any]) -> tuple[list[str], dict[str, str]]:
    """Connection options for pg_dump/pg_restore; the password only ever in the environment."""
    _, extra_env = PostgresClient.settings_to_cmd_args_env(settings_dict, [])
    args = []
    if settings_dict.get("USER"):
        args += ["--username", settings_dict["USER"]]
    if settings_dict.get("HOST"):
        args += ["--host", settings_dict["HOST"]]
    if settings_dict.get("PORT"):
        args += ["--port", str(settings_dict["PORT"])]
    if settings_dict.get("NAME"):
        args += ["--dbname", settings_dict["NAME"]]
    elif not settings_dict.get("OPTIONS", {}).get("service"):  # a service file names the database
        raise BackupError("The database settings name no database.")
    return args, {**os.environ, **(extra_env or {})}


def _run(command: list[str], *, env: dict[str, str], what: str) -> None:
    try:
        result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)  # noqa: S603
    except OSError as exc:
        raise BackupError(f"Could not run {what}: {exc}.") from None
    if result.returncode != 0:
        tail = "\n".join(result.stderr.strip().splitlines()[-15:])
        raise BackupError(f"{what} failed (exit status {result.returncode}):\n{tail}")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in _blocks(fh):
            digest.update(block)
    return digest.hexdigest()


def _blocks(stream) -> Iterator[bytes]:
    while block := stream.read(CHUNK):
        yield block


def _fsync_dir(path: Path) -> None:
    """Make the rename itself durable, not only the file's contents."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
