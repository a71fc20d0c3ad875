from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from usergroup.backup import BackupError, restore_backup


class Command(BaseCommand):
    help = (
        "Restore an archive written by `backup` into the configured database and the media folders, "
        "then compare every table's rows with the archive's manifest. Stop the web, worker and beat "
        "processes first."
    )

    def add_arguments(self, parser):
        parser.add_argument("archive", help="The usergroup-backup-*.tar.gz file.")
        parser.add_argument(
            "--yes",
            action="store_true",
            help="Replace the data of a database that is not empty (it is refused otherwise).",
        )

    def handle(self, *args, archive: str, yes: bool = False, **options):
        try:
            result = restore_backup(archive=Path(archive), confirmed=yes, progress=self.stdout.write)
        except BackupError as exc:
            raise CommandError(str(exc)) from None

        manifest = result.manifest
        app = manifest.get("app") or {}
        made_by = " ".join(str(v) for v in (app.get("version"), app.get("git_commit")) if v) or "unknown"
        self.stdout.write(f"Backup of {manifest.get('created_at')} (code {made_by}).")
        width = max((len(t.table) for t in result.tables), default=5)
        self.stdout.write(f"{'table':<{width}}  {'archive':>9}  {'restored':>9}")
        for t in result.tables:
            restored = "missing" if t.restored is None else str(t.restored)
            line = f"{t.table:<{width}}  {t.archived:>9}  {restored:>9}"
            self.stdout.write(line if t.ok else self.style.ERROR(f"{line}  differs"))
        if manifest.get("media") is not None:
            self.stdout.write(f"Media files restored: {result.media_files}.")
        if result.unknown_migrations:
            self.stdout.write(
                self.style.WARNING(
                    "The backup was made by newer code: this code does not know the migrations "
                    + ", ".join(result.unknown_migrations)
                    + ". Deploy that version before starting the site."
                )
            )
        if result.pending_migrations:
            self.stdout.write(
                self.style.WARNING(
                    f"The backup lacks migrations this code has ({len(result.pending_migrations)}): "
                    "run `python manage.py migrate`."
                )
            )
        differing = [t.table for t in result.tables if not t.ok]
        if differing:
            raise CommandError(f"{len(differing)} tables differ from the archive: {', '.join(differing)}.")
        self.stdout.write(self.style.SUCCESS(f"Restored: all {len(result.tables)} tables match the archive."))
