import sqlite3
import uuid

from django.apps import AppConfig


class OrgsConfig(AppConfig):
    name = "orgs"
    verbose_name = "Organisations"

    def ready(self):
        # Embedded mode (SQLite): raw SQL written for both backends (INSERT … ON CONFLICT in the
        # services) passes UUIDs as parameters. PostgreSQL adapts them natively; teach sqlite3 to
        # store them the way Django's UUIDField does on SQLite (32 hex characters).
        sqlite3.register_adapter(uuid.UUID, lambda value: value.hex)

        # The API key resolution cache (orgs/key_cache.py) forgets everything this process changes.
        from django.db.models.signals import post_delete, post_save

        from orgs import key_cache
        from orgs.models import ApiKey, Org
        from sms.models import ProviderAccount

        for model in (ApiKey, Org, ProviderAccount):
            post_save.connect(key_cache.clear, sender=model, dispatch_uid=f"key_cache_{model.__name__}_save")
            post_delete.connect(key_cache.clear, sender=model, dispatch_uid=f"key_cache_{model.__name__}_delete")
