from audit.models import AuditEntry


def audit_entry_list(*, org, action: str | None = None):
    qs = AuditEntry.objects.filter(org=org)
    if action:
        qs = qs.filter(action=action)
    return qs
