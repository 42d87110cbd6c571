"""audit_record: the one way an audit entry is written."""
from dataclasses import dataclass

from audit.models import ActorType, AuditEntry, Outcome


@dataclass(frozen=True)
class Actor:
    type: str
    id: str = ""
    mode: str = "prod"  # an API key's mode (prod | test); every other actor acts in the live world

    @classmethod
    def api_key(cls, key) -> "Actor":
        return cls(ActorType.API_KEY, str(key.pk), key.mode)

    @classmethod
    def user(cls, user) -> "Actor":
        return cls(ActorType.USER, str(user.pk))

    @classmethod
    def system(cls, name: str = "system") -> "Actor":
        return cls(ActorType.SYSTEM, name)

    @classmethod
    def provider(cls, name: str) -> "Actor":
        return cls(ActorType.PROVIDER, name)


@dataclass(frozen=True)
class RequestContext:
    """Who/where a request came from, passed from entry points into services."""

    request_id: str = ""
    client_ip: str | None = None

    @classmethod
    def from_request(cls, request) -> "RequestContext":
        if request is None:
            return cls()
        from sendora_sms.client_ip import client_ip

        ip = client_ip(request)
        return cls(request_id=getattr(request, "request_id", "") or "", client_ip=ip)


def audit_entry_build(*, org, actor: Actor, action: str, resource_type: str = "", resource_id="",
                      outcome: str = Outcome.OK, payload_bytes: int = 0, context: RequestContext | None = None,
                      details: dict | None = None) -> AuditEntry:
    """The entry audit_record would write, unsaved: for a caller that inserts it in one round trip
    with its other rows (sendora_sms/db.py StatementBatch.insert)."""
    context = context or RequestContext()
    return AuditEntry(
        org_id=getattr(org, "pk", org), actor_type=actor.type, actor_id=actor.id, action=action,
        resource_type=resource_type, resource_id=str(resource_id or ""), outcome=outcome,
        payload_bytes=payload_bytes, request_id=context.request_id[:128], client_ip=context.client_ip,
        details=details or {}, mode=actor.mode,
    )


def audit_record(*, org, actor: Actor, action: str, resource_type: str = "", resource_id="",
                 outcome: str = Outcome.OK, payload_bytes: int = 0, context: RequestContext | None = None,
                 details: dict | None = None) -> AuditEntry:
    entry = audit_entry_build(org=org, actor=actor, action=action, resource_type=resource_type,
                              resource_id=resource_id, outcome=outcome, payload_bytes=payload_bytes,
                              context=context, details=details)
    entry.save(force_insert=True)
    return entry
