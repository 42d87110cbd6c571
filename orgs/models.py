import uuid

from django.conf import settings
from django.db import models

from orgs.plans import PLAN_LIMITS, Plan


class Org(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200)
    plan = models.CharField(max_length=20, choices=Plan.CHOICES, default=Plan.STARTER)
    monthly_quota_override = models.PositiveIntegerField(
        null=True, blank=True, help_text="Messages per month; blank uses the plan default.")
    send_rate_override = models.PositiveIntegerField(
        null=True, blank=True, help_text="Sends per second; blank uses the plan default.")
    help_text = models.TextField(blank=True, help_text="Reply to HELP/INFO; blank uses the default text.")
    opt_out_text = models.TextField(blank=True, help_text="Confirmation sent after STOP; blank uses the default text.")
    opt_out_confirmation_enabled = models.BooleanField(
        default=True, help_text="Turn off when Twilio's own auto-reply already confirms opt-outs.")
    # Cost and countries (README "Cost and countries"; sms/services/cost.py). Amounts are USD Decimals.
    home_country = models.CharField(
        max_length=2, default="US", db_default="US", help_text="ISO 3166-1 alpha-2; the only allowed destination when the list is empty.")
    allowed_countries = models.JSONField(
        default=list, db_default=[], blank=True, help_text="ISO 3166-1 alpha-2 codes sends may go to; empty: the home country only.")
    monthly_spend_cap = models.DecimalField(
        max_digits=14, decimal_places=4, null=True, blank=True,
        help_text="USD per calendar month (UTC), all live sends; blank: no cap.")
    country_spend_caps = models.JSONField(
        default=dict, db_default={}, blank=True, help_text='USD per calendar month per destination country, e.g. {"GB": "20.00"}.')
    pumping_limit = models.PositiveIntegerField(
        null=True, blank=True, help_text="Sends per hour to one number range (usual countries); blank: the default "
                                         "(SMS_PUMPING_LIMIT). Other countries and high-risk ranges get a stricter share.")
    price_overrides = models.JSONField(
        default=dict, db_default={}, blank=True, help_text='Negotiated USD price per segment by country, e.g. {"GB": "0.0400"}; '
                                            'replaces the shipped price table for this org.')
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def monthly_quota(self) -> int:
        if self.monthly_quota_override is not None:
            return self.monthly_quota_override
        return PLAN_LIMITS[self.plan].monthly_messages

    @property
    def send_rate(self) -> int:
        if self.send_rate_override is not None:
            return self.send_rate_override
        return PLAN_LIMITS[self.plan].sends_per_second

    @property
    def destination_countries(self) -> list[str]:
        """The allowed destination countries: the list, or the home country when the list is empty."""
        return list(self.allowed_countries or []) or [self.home_country]

    @property
    def sms_enabled(self) -> bool:
        return PLAN_LIMITS[self.plan].sms_enabled


class Role:
    OWNER = "owner"
    ADMIN = "admin"
    MEMBER = "member"
    MEMBERSHIP_CHOICES = [(OWNER, "Owner"), (ADMIN, "Admin"), (MEMBER, "Member")]
    KEY_CHOICES = [(ADMIN, "Admin"), (MEMBER, "Member")]


class Membership(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    org = models.ForeignKey(Org, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.MEMBERSHIP_CHOICES, default=Role.MEMBER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "org"], name="membership_user_org_unique")]

    def __str__(self) -> str:
        return f"{self.user} @ {self.org} ({self.role})"

    @property
    def is_admin(self) -> bool:
        return self.role in (Role.OWNER, Role.ADMIN)


class KeyMode:
    PROD = "prod"
    TEST = "test"
    CHOICES = [(PROD, "Live (prod)"), (TEST, "Sandbox (test)")]


class ApiKey(models.Model):
    """An API key. Only a SHA-256 hash of the raw key is stored, plus a short visible prefix."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    org = models.ForeignKey(Org, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100, blank=True)
    role = models.CharField(max_length=10, choices=Role.KEY_CHOICES, default=Role.MEMBER)
    mode = models.CharField(max_length=4, choices=KeyMode.CHOICES, default=KeyMode.TEST)
    publishable = models.BooleanField(default=False)
    prefix = models.CharField(max_length=24, help_text="The first characters of the key, for recognising it.")
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.role}, {self.org})"

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class SandboxDailyUsage(models.Model):
    """Sends accepted from test keys (sk_test_…) by an org on one UTC day: the sandbox's own daily cap
    (settings.SANDBOX_DAILY_CAP; orgs/quota.py). Test sends never touch the live QuotaUsage meter."""

    org = models.ForeignKey(Org, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    used = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["org", "day"], name="sandbox_daily_usage_org_day_uniq")]


class QuotaUsage(models.Model):
    """Messages reserved by an org in one monthly period (the quota meter).

    A period's meter may be split over a few `shard` rows (orgs/quota.py), so concurrent sends of one
    org don't all queue on one row lock; the period's usage is the sum of its rows."""

    org = models.ForeignKey(Org, on_delete=models.CASCADE, related_name="quota_usages")
    period_start = models.DateField()
    shard = models.PositiveSmallIntegerField(default=0, db_default=0)
    used = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["org", "period_start", "shard"], name="quota_usage_org_period_shard_uniq"),
        ]


class SpendUsage(models.Model):
    """Live spend (USD) of an org on one UTC day to one destination country: the spend meter
    (orgs/spend.py). A monthly cap sums the month's rows. Each (org, day, country) is split over a few
    `shard` rows (chosen from the send id) so uncapped concurrent sends don't queue on one row lock."""

    org = models.ForeignKey(Org, on_delete=models.CASCADE, related_name="+", db_index=False)
    day = models.DateField()
    country = models.CharField(max_length=3)
    shard = models.PositiveSmallIntegerField(default=0)
    amount = models.DecimalField(max_digits=16, decimal_places=5, default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["org", "day", "country", "shard"],
                                               name="spend_usage_org_day_country_shard_uniq")]


class SpendThresholdMark(models.Model):
    """A spend threshold (50/80/100 % of a cap) already announced in a period: `sms.spend_threshold`
    fires once per (org, period, cap, threshold)."""

    org = models.ForeignKey(Org, on_delete=models.CASCADE, related_name="+", db_index=False)
    period_start = models.DateField()
    scope = models.CharField(max_length=8, help_text='"monthly" or the country code of a country cap')
    threshold = models.PositiveSmallIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["org", "period_start", "scope", "threshold"],
                                               name="spend_threshold_mark_uniq")]
