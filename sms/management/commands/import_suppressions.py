"""import_suppressions ORG_ID FILE [--reason import] [--batch-size 5000]

FILE ("-" for stdin): CSV with a header (phone_number[,reason][,created_at]), a bare one-column CSV of
numbers, or JSONL ({"phone_number": …, "reason": …, "created_at": …} per line). Numbers are normalised
to E.164; a row's own reason/created_at are kept (so an export re-imports exactly), else --reason and
now. Bad rows are reported on stderr with their line numbers and skipped. Numbers already on the list
are left alone, so importing the same file twice changes nothing. Streams in constant memory; each
batch is committed as it goes. A progress line is shown only when stdout is a terminal.
"""
import sys

from django.core.management.base import CommandError

from audit.services import Actor
from sendora_sms.commands import OperatorCommand, int_option, org_from_arg
from sms.models import SuppressionReason
from sms.services.suppressions import DEFAULT_BATCH_SIZE, suppressions_import

REASONS = [r for r, _ in SuppressionReason.CHOICES]


class Command(OperatorCommand):
    help = "Import phone numbers into an org's suppression list from CSV or JSONL (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("org_id", metavar="ORG_ID")
        parser.add_argument("file", metavar="FILE", help='CSV or JSONL file; "-" reads stdin.')
        parser.add_argument("--reason", choices=REASONS, default=SuppressionReason.IMPORT,
                            help="Reason for rows that do not carry their own (default: import).")
        parser.add_argument("--batch-size", default=str(DEFAULT_BATCH_SIZE), help="Rows per INSERT (default 5000).")
        parser.add_argument("--json", action="store_true", help="Print the summary as one JSON object.")

    def handle(self, *args, **options):
        batch_size = int_option(options["batch_size"], name="--batch-size", minimum=1, maximum=100_000)
        org = org_from_arg(options["org_id"])
        path = options["file"]
        stream = self._open(path)
        show_progress = self.stdout.isatty() and not options["json"]

        def progress(report):
            self.stdout.write(f"\r{report.processed:,} rows processed (line {report.lines:,})…", ending="")
            self.stdout.flush()

        def bad_row(error):
            self.stderr.write(f"line {error.line}: {error.value!r}: {error.error}")

        try:
            report = suppressions_import(org=org, rows=stream, reason=options["reason"], batch_size=batch_size,
                                         actor=Actor.system("manage.py import_suppressions"),
                                         on_progress=progress if show_progress else None, on_error=bad_row)
        except UnicodeDecodeError as exc:
            raise CommandError(f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start}); rows before that "
                               f"point were imported.") from None
        finally:
            if stream is not sys.stdin:
                stream.close()
        if show_progress:
            self.stdout.write("")
        if options["json"]:
            self.write_json({"imported": report.imported, "already_present": report.already_present,
                             "invalid": report.invalid})
        else:
            self.stdout.write(report.summary())

    def _open(self, path):
        if path == "-":
            return sys.stdin
        try:
            return open(path, encoding="utf-8-sig", newline="")  # noqa: SIM115 — closed in handle()
        except FileNotFoundError:
            raise CommandError(f"FILE {path!r} does not exist.") from None
        except IsADirectoryError:
            raise CommandError(f"FILE {path!r} is a directory.") from None
        except OSError as exc:
            raise CommandError(f"Cannot read FILE {path!r}: {exc.strerror}.") from None
