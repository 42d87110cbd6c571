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
