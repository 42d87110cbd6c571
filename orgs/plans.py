"""Plans and their defaults (the API contract (README.md, /api/schema) "Plans"). Per-org overrides live on Org."""
from dataclasses import dataclass


class Plan:
    FREE = "free"
    STARTER = "starter"
    GROWTH = "growth"
    ENTERPRISE = "enterprise"
    CHOICES = [(FREE, "Free"), (STARTER, "Starter"), (GROWTH, "Growth"), (ENTERPRISE, "Enterprise")]


@dataclass(frozen=True)
class PlanLimits:
    monthly_messages: int
    sends_per_second: int
    sms_enabled: bool


PLAN_LIMITS = {
    Plan.FREE: PlanLimits(0, 0, False),
    Plan.STARTER: PlanLimits(5_000, 10, True),
    Plan.GROWTH: PlanLimits(100_000, 50, True),
    Plan.ENTERPRISE: PlanLimits(1_000_000, 200, True),
}
