"""create_org NAME --plan starter [--quota N] [--rate N] [--json] → {"org_id": "…"}"""
from orgs.plans import Plan
from orgs.services import org_create
from sendora_sms.commands import OperatorCommand, int_option

PLANS = [value for value, _ in Plan.CHOICES]


class Command(OperatorCommand):
    help = "Create an org. --quota (messages per month) and --rate (sends per second) override the plan's defaults."

    def add_arguments(self, parser):
        parser.add_argument("name", metavar="NAME")
        parser.add_argument("--plan", required=True, help=f"One of: {', '.join(PLANS)}.")
        parser.add_argument("--quota", help="Monthly message quota (overrides the plan).")
        parser.add_argument("--rate", help="Sends per second (overrides the plan).")
        parser.add_argument("--json", action="store_true", help='Print {"org_id": "…"} only.')

    def handle(self, *args, **options):
        org = org_create(
            name=options["name"],
            plan=(options["plan"] or "").strip().lower(),
            monthly_quota=int_option(options["quota"], name="--quota"),
            send_rate=int_option(options["rate"], name="--rate"),
        )
        if options["json"]:
            self.write_json({"org_id": str(org.pk)})
            return
        self.stdout.write(f"Created org {org.name!r} ({org.plan}): {org.pk}")
        self.stdout.write(f"  quota {org.monthly_quota} messages/month, rate {org.send_rate} sends/second")
