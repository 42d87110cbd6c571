"""create_api_key ORG_ID --role admin|member [--mode prod|test] [--publishable] [--json]
→ {"key": "sk_prod_…", "id": "…"}. The raw key is printed once; only its hash is stored."""
from orgs.models import KeyMode
from orgs.services import api_key_create
from sendora_sms.commands import OperatorCommand, org_from_arg


class Command(OperatorCommand):
    help = "Create an API key for an org and print it (once: only a hash is stored)."

    def add_arguments(self, parser):
        parser.add_argument("org_id", metavar="ORG_ID")
        parser.add_argument("--role", required=True, help="admin or member.")
        parser.add_argument("--mode", default=KeyMode.PROD, help="prod (live, default) or test (sandbox).")
        parser.add_argument("--publishable", action="store_true", help="A pk_… key (may call no SMS endpoint).")
        parser.add_argument("--name", default="", help="A label shown in the dashboard.")
        parser.add_argument("--json", action="store_true", help='Print {"key": "…", "id": "…"} only.')

    def handle(self, *args, **options):
        org = org_from_arg(options["org_id"])
        key, raw = api_key_create(
            org=org,
            role=(options["role"] or "").strip().lower(),
            mode=(options["mode"] or "").strip().lower(),
            publishable=options["publishable"],
            name=options["name"][:100],
        )
        if options["json"]:
            self.write_json({"key": raw, "id": str(key.pk)})
            return
        kind = "publishable" if key.publishable else "secret"
        self.stdout.write(f"Created {kind} {key.role} key ({key.mode}) {key.pk} for org {org.name!r}:")
        self.stdout.write(raw)
        self.stdout.write("Store it now: it cannot be shown again.")

