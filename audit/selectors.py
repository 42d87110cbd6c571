from audit.models import AuditEntry


def audit_entry_list(*, org, action: str | None = None, mode: str | None = None):
    """The org's audit entries, newest first. `mode`: the API shows a key only its own mode's entries
    (a test key's actions are `test`; everything else — live keys, dashboard users, webhooks, the
    system — is `prod`); `None` (the dashboard) shows all."""
    qs = AuditEntry.objects.filter(org=org)
    if mode is not None:
        qs = qs.filter(mode=mode)
    if action:
        qs = qs.filter(action=action)
    return qs
