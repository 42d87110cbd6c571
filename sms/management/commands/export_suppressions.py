"""export_suppressions ORG_ID [--output FILE] [--format csv|jsonl]

Writes the org's suppression list, oldest first, to FILE (atomically: a temporary file renamed into
place) or stdout. CSV has the header phone_number,reason,created_at; JSONL has one object per line.
created_at is ISO-8601 UTC with microseconds, so `import_suppressions` into another org reproduces the
list exactly. Streams in constant memory.
"""
import os
import tempfile

from django.core.management.base import CommandError

from sendora_sms.commands import OperatorCommand, org_from_arg
from sms.services.suppressions import EXPORT_FORMATS, suppressions_export


class Command(OperatorCommand):
    help = "Export an org's suppression list as CSV or JSONL (re-importable with import_suppressions)."

    def add_arguments(self, parser):
        parser.add_argument("org_id", metavar="ORG_ID")
        parser.add_argument("--output", "-o", metavar="FILE", help="Write here instead of stdout.")
        parser.add_argument("--format", dest="fmt", choices=EXPORT_FORMATS, default="csv")

    def handle(self, *args, **options):
        org = org_from_arg(options["org_id"])
        fmt, output = options["fmt"], options.get("output")
        chunks = suppressions_export(org=org, fmt=fmt)
        if not output:
            for chunk in chunks:
                self.stdout.write(chunk, ending="")
            return
        if os.path.isdir(output):
            raise CommandError(f"--output {output!r} is a directory.")
        directory = os.path.dirname(os.path.abspath(output))
        if not os.path.isdir(directory):
            raise CommandError(f"Directory {directory!r} for --output does not exist.")
        try:
            fd, tmp = tempfile.mkstemp(prefix=".suppressions-", dir=directory)
        except OSError as exc:
            raise CommandError(f"Cannot write to {directory!r}: {exc.strerror}.") from None
        lines = 0
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
                for chunk in chunks:
                    handle.write(chunk)
                    lines += chunk.count("\n")
            os.replace(tmp, output)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        rows = lines - 1 if fmt == "csv" else lines
        self.stderr.write(f"exported {rows} suppressions to {output}")
