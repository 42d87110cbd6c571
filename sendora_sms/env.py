"""The one place the environment is read (django-environ)."""
import environ

env = environ.Env()
