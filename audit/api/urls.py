from django.urls import path

from audit.api.views import AuditLogListApi

urlpatterns = [path("orgs/<str:org_id>/audit-log", AuditLogListApi.as_view(), name="audit-log-list")]
