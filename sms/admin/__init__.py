"""The dashboard (Django admin on sendora_sms.admin_site.site, served at /admin/).

Registered here: the SMS models and Django's users/groups. orgs/admin.py and audit/admin.py register
their own models on the same site (admin autodiscovery imports them). Every tenant model admin uses
the one scoping mixin in sms/admin/scoping.py.
"""
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group, User

from sendora_sms.admin_site import site
from sms.admin.provider_accounts import ProviderAccountAdmin
from sms.admin.sends import SendAdmin
from sms.admin.suppressions import SuppressionAdmin
from sms.models import ProviderAccount, Send, Suppression

site.register(ProviderAccount, ProviderAccountAdmin)
site.register(Send, SendAdmin)
site.register(Suppression, SuppressionAdmin)
site.register(User, UserAdmin)
site.register(Group, GroupAdmin)

from sms.tenant_webhooks.admin import register as _register_tenant_webhooks  # noqa: E402

_register_tenant_webhooks(site)

from sms.links.admin import register as _register_links  # noqa: E402

_register_links(site)
