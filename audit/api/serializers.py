from rest_framework import serializers

from audit.models import AuditEntry


class AuditEntryOutput(serializers.ModelSerializer):
    org_id = serializers.UUIDField(read_only=True)

    class Meta:
        model = AuditEntry
        fields = ["id", "org_id", "actor_type", "actor_id", "action", "resource_type", "resource_id",
                  "payload_bytes", "outcome", "request_id", "client_ip", "details", "created_at"]
