"""Short links and their clicks (the `sms` app's tables; imported by sms/models.py so Django registers them)."""
from __future__ import annotations

import uuid

from django.db import models


class LinkSettings(models.Model):
    """An org's link settings (a missing row means the defaults)."""

    org = models.OneToOneField("orgs.Org", on_delete=models.CASCADE, primary_key=True, related_name="link_settings")
    shorten_links = models.BooleanField(default=True, help_text="Default of the send request's `shorten_links`.")
    branded_domain = models.CharField(
        max_length=253, null=True, blank=True,
        help_text="A host name of yours (e.g. go.example.com) pointed at this service; short links are then "
                  "https://{domain}/{code} and that host resolves only this org's links. Blank: the platform's.")
    retention_days = models.PositiveIntegerField(default=180, help_text="A link answers 404 this many days after "
                                                 "its send was accepted.")
    blocked_hosts = models.JSONField(default=list, blank=True, help_text="Host names (their subdomains too) a "
                                     "body may not link to: 400 link_not_allowed.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        # A constraint, not unique=True: no second (…_like) index beside the unique one.
        constraints = [models.UniqueConstraint(fields=["branded_domain"], name="link_settings_branded_domain_unique")]
        verbose_name = "link settings"
        verbose_name_plural = "link settings"

    def __str__(self) -> str:
        return f"Link settings ({self.org})"


class AppRoute(models.Model):
    """Deep links: a target under `prefix` opened on an iOS/Android phone gets a page that opens the app."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    org = models.ForeignKey("orgs.Org", on_delete=models.CASCADE, related_name="app_routes", db_index=False)
    prefix = models.CharField(max_length=500, help_text="e.g. https://shop.example.com/ (http or https)")
    ios_url = models.CharField(max_length=500, blank=True, help_text="e.g. shopapp:// — the rest of the URL "
                               "after the prefix is appended.")
    android_url = models.CharField(max_length=500, blank=True, help_text="A custom scheme (shopapp://) or an intent "
                                   "URL (intent://#Intent;scheme=shopapp;package=com.shop;end); the rest of the URL "
                                   "after the prefix is inserted as its path.")
    fallback_url = models.CharField(max_length=500, blank=True, help_text="Where to go when the app is missing; "
                                   "blank: the link's own URL.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["org", "prefix"], name="app_route_org_prefix_unique")]

    def __str__(self) -> str:
        return self.prefix


class Link(models.Model):
    """One URL of one send: clicks are attributed to that send's recipient."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    org = models.ForeignKey("orgs.Org", on_delete=models.CASCADE, related_name="+", db_index=False)
    send = models.ForeignKey("sms.Send", on_delete=models.CASCADE, related_name="links", db_index=False)
    mode = models.CharField(max_length=4, default="prod")
    position = models.PositiveSmallIntegerField(default=0)
    code = models.CharField(max_length=22)
    url = models.TextField(help_text="The target as it appeared in the body.")
    domain = models.CharField(max_length=253, blank=True, help_text="The branded domain the code lives under; "
                              "blank: the platform's link base.")
    short_url = models.CharField(max_length=600)
    expires_at = models.DateTimeField()
    clicks = models.PositiveIntegerField(default=0)
    previews = models.PositiveIntegerField(default=0)
    first_clicked_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["position"]  # a send's links in order of appearance
        constraints = [models.UniqueConstraint(fields=["code"], name="link_code_unique")]
        indexes = [
            models.Index(fields=["org", "mode", "-created_at", "-id"], name="link_org_mode_created_idx"),
            models.Index(fields=["send", "position"], name="link_send_position_idx"),
        ]

    def __str__(self) -> str:
        return self.short_url


class ClickKind:
    CLICK = "click"
    PREVIEW = "preview"
    CHOICES = [(CLICK, "Click"), (PREVIEW, "Preview / scanner")]


class LinkClick(models.Model):
    """One request for a short link: a real click, or a preview (fetcher, scanner, HEAD, too soon)."""

    id = models.UUIDField(primary_key=True, editable=False)  # minted by the redirect: ingestion is idempotent
    link = models.ForeignKey(Link, on_delete=models.CASCADE, related_name="click_rows", db_index=False)
    send = models.ForeignKey("sms.Send", on_delete=models.CASCADE, related_name="+", db_index=False)
    kind = models.CharField(max_length=8, choices=ClickKind.CHOICES)
    reason = models.CharField(max_length=24, blank=True, help_text="Why a preview: user_agent, head, too_soon.")
    platform = models.CharField(max_length=8, help_text="ios, android, desktop, other")
    country = models.CharField(max_length=2, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    clicked_at = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(fields=["link", "clicked_at"], name="link_click_link_idx"),
            models.Index(fields=["send", "clicked_at"], name="link_click_send_idx"),
        ]
