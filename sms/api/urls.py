from django.urls import path

from sms.api.providers import ProviderListApi
from sms.api.suppressions import SuppressionCollectionApi, SuppressionDeleteApi
from sms.api.views import EventListApi, SendCreateApi, SendDetailApi, SendListApi, SmsStatsApi

# No trailing slashes (the API contract (README.md, /api/schema)): a POST that redirects loses its body.
urlpatterns: list = [
    path("orgs/<str:org_id>/sms/send", SendCreateApi.as_view(), name="sms-send-create"),
    path("orgs/<str:org_id>/sms/sends", SendListApi.as_view(), name="sms-send-list"),
    path("orgs/<str:org_id>/sms/sends/<str:send_id>", SendDetailApi.as_view(), name="sms-send-detail"),
    path("orgs/<str:org_id>/sms/stats", SmsStatsApi.as_view(), name="sms-stats"),
    path("orgs/<str:org_id>/events", EventListApi.as_view(), name="event-list"),
    path("orgs/<str:org_id>/sms/providers", ProviderListApi.as_view(), name="sms-providers"),
    path("orgs/<str:org_id>/sms/suppressions", SuppressionCollectionApi.as_view(), name="sms-suppressions"),
    path("orgs/<str:org_id>/sms/suppressions/<str:phone>", SuppressionDeleteApi.as_view(),
         name="sms-suppression-delete"),
]
