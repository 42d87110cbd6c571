"""Shared plumbing for operator management commands (the API contract (README.md, /api/schema) "Operator interface").

Every command answers bad input with ONE line on stderr and a non-zero exit, never a traceback:
- argument-parsing errors (missing/unknown options) print `CommandError: …` and exit 2;
- our typed errors (SendoraError/ValidationFailed), `ObjectDoesNotExist` and `ValueError` raised by
  services become `CommandError` (exit 1), which Django prints as one line.
`--json` commands print exactly one JSON object on stdout.
"""
import json
import sys
import uuid

from django.core.exceptions import ObjectDoesNotExist
from django.core.management.base import BaseCommand, CommandError

from sendora_sms.errors import SendoraError


class OperatorCommand(BaseCommand):
    """BaseCommand whose failures are always one readable line."""

    def create_parser(self, prog_name, subcommand, **kwargs):
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        from_cli = parser.called_from_command_line

        def error(message):
            if from_cli:
                self.stderr.write(f"CommandError: {message} (see `manage.py {subcommand} --help`)")
                sys.exit(2)
            raise CommandError(f"Error: {message}")

        parser.error = error
        return parser

    def execute(self, *args, **options):
        try:
            return super().execute(*args, **options)
        except CommandError:
            raise
        except SendoraError as exc:
            raise CommandError(exc.message) from None
        except ObjectDoesNotExist as exc:
            raise CommandError(str(exc) or "Not found.") from None
        except ValueError as exc:
            raise CommandError(str(exc) or exc.__class__.__name__) from None

    def write_json(self, data: dict) -> None:
        self.stdout.write(json.dumps(data, sort_keys=True))


def org_from_arg(raw: str):
    """The Org for an ORG_ID argument, or CommandError naming what is wrong."""
    from orgs.models import Org

    try:
        org_id = uuid.UUID(str(raw).strip())
    except ValueError:
        raise CommandError(f"ORG_ID {raw!r} is not a valid org id (expected a UUID).") from None
    org = Org.objects.filter(pk=org_id).first()
    if org is None:
        raise CommandError(f"No org with id {org_id}.")
    return org


def int_option(raw, *, name: str, minimum: int = 0, maximum: int = 2_147_483_647) -> int | None:
    """Parse an integer option ourselves, so a bad value is a one-line CommandError."""
    if raw is None:
        return None
    try:
        value = int(str(raw).strip())
    except ValueError:
        raise CommandError(f"{name} must be a whole number, got {raw!r}.") from None
    if value < minimum:
        raise CommandError(f"{name} must be at least {minimum}, got {value}.")
    if value > maximum:
        raise CommandError(f"{name} must be at most {maximum}, got {value}.")
    return value
