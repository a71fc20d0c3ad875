from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.template.defaultfilters import filesizeformat

from usergroup.backup import BackupError, create_backup


class Command(BaseCommand):
    help = (
        "Write the database (pg_dump on PostgreSQL, an online copy of the SQLite file otherwise), "
        "the media folders and a manifest into one timestamped .tar.gz archive."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--output",
            metavar="DIR",
            help=f"An existing, writable directory for the archive (default: BACKUP_DIR, {settings.BACKUP_DIR}).",
        )
        parser.add_argument(
            "--no-media", action="store_true", help="Leave out MEDIA_ROOT and PRIVATE_MEDIA_ROOT."
        )
        parser.add_argument(
            "--keep",
            type=int,
            metavar="N",
            help="Afterwards delete all but the newest N archives in the output directory.",
        )

    def handle(
        self, *args, output: str | None = None, no_media: bool = False, keep: int | None = None, **options
    ):
        if keep is not None and keep < 1:
            raise CommandError(f"--keep must be 1 or more, not {keep}.")
        if output is None:
            output_dir = Path(settings.BACKUP_DIR)
            try:
                output_dir.mkdir(parents=True, exist_ok=True)  # only the default is created
            except OSError as exc:
                raise CommandError(f"Cannot create BACKUP_DIR {output_dir}: {exc}.") from None
        else:
            output_dir = Path(output)
        try:
            result = create_backup(output_dir=output_dir, include_media=not no_media, keep=keep)
        except BackupError as exc:
            raise CommandError(str(exc)) from None

        manifest = result.manifest
        rows = sum(manifest["row_counts"].values())
        self.stdout.write(
            f"Database: {manifest['database']['vendor']}, {len(manifest['row_counts'])} tables, {rows} rows."
        )
        if manifest["media"] is None:
            self.stdout.write("Media: left out (--no-media).")
        else:
            for folder, figures in manifest["media"].items():
                self.stdout.write(
                    f"Media ({folder}): {figures['files']} files, {filesizeformat(figures['bytes'])}."
                )
        for path in result.pruned:
            self.stdout.write(f"Deleted the older archive {path.name}.")
        size = filesizeformat(result.path.stat().st_size)
        self.stdout.write(self.style.SUCCESS(f"Backup written: {result.path} ({size})."))
