"""Tenant scoping for the dashboard — the one place it lives.

Rules:
- A superuser sees and edits everything.
- Any other staff user sees only the orgs they are a member of (orgs.Membership): changelists,
  list filters, form choices and object pages. Another org's object, even by a hand-typed URL,
  is 404 ("not yours" == "does not exist").
- Write access is by membership role: owners and admins of an org may change what the admin class
  allows; plain members are read-only. Django's per-model permissions are not used for tenants —
  membership is the only grant (a staff user with no membership sees no tenant data).
"""
import uuid

from django.contrib import admin
from django.http import Http404

from orgs.models import Org, Role

_ADMIN_ROLES = (Role.OWNER, Role.ADMIN)


def is_uuid(value) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


def user_org_roles(request) -> dict:
    """{org_id: role} for the request's user, cached on the request."""
    cached = getattr(request, "_sendora_org_roles", None)
    if cached is None:
        from orgs.models import Membership

        user = request.user
        cached = {}
        if user.is_authenticated and user.is_active and user.is_staff:
            cached = dict(Membership.objects.filter(user=user).values_list("org_id", "role"))
        request._sendora_org_roles = cached
    return cached


def visible_org_ids(request) -> set | None:
    """Orgs the user may see; None means all (superuser)."""
    if request.user.is_superuser:
        return None
    return set(user_org_roles(request))


def admin_org_ids(request) -> set | None:
    """Orgs the user may change (owner/admin role); None means all (superuser)."""
    if request.user.is_superuser:
        return None
    return {org_id for org_id, role in user_org_roles(request).items() if role in _ADMIN_ROLES}


def can_view_org(request, org_id) -> bool:
    ids = visible_org_ids(request)
    return ids is None or org_id in ids


def can_admin_org(request, org_id) -> bool:
    ids = admin_org_ids(request)
    return ids is None or org_id in ids


def visible_orgs(request):
    ids = visible_org_ids(request)
    return Org.objects.all() if ids is None else Org.objects.filter(pk__in=ids)


def admin_orgs(request):
    ids = admin_org_ids(request)
    return Org.objects.all() if ids is None else Org.objects.filter(pk__in=ids)


def get_visible_org_or_404(request, org_id) -> Org:
    org = visible_orgs(request).filter(pk=org_id).first()
    if org is None:
        raise Http404("No such org.")
    return org


class OrgScopedAdminMixin:
    """Mix into a ModelAdmin (or inline) whose model belongs to an org.

    org_lookup: the ORM path from the model to its Org ("org", "send__org"); "" when the model is Org.
    writable: whether org owners/admins may add/change/delete at all (False = read-only for everyone
        but what a subclass allows explicitly).
    view_requires_org_admin: only owners/admins see the model (e.g. the audit log).
    """

    org_lookup = "org"
    writable = True
    view_requires_org_admin = False

    # -- which orgs ---------------------------------------------------------------------------
    def _org_id_of(self, obj):
        if obj is None:
            return None
        if not self.org_lookup:
            return obj.pk
        *path, last = self.org_lookup.split("__")
        for part in path:
            obj = getattr(obj, part)
        return getattr(obj, f"{last}_id")

    def _viewable_ids(self, request):
        return admin_org_ids(request) if self.view_requires_org_admin else visible_org_ids(request)

    def scope_queryset(self, request, qs):
        ids = self._viewable_ids(request)
        if ids is None:
            return qs
        return qs.filter(**{f"{self.org_lookup or 'pk'}__in": ids})

    def get_queryset(self, request):
        return self.scope_queryset(request, super().get_queryset(request))

    def get_object(self, request, object_id, from_field=None):
        """Not in the user's scope (or not existing) is 404, never a redirect that confirms existence."""
        obj = super().get_object(request, object_id, from_field)
        if obj is None:
            raise Http404("No such object.")
        return obj

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        """Org choices in forms: only the orgs the user may change."""
        if db_field.related_model is Org:
            kwargs["queryset"] = admin_orgs(request)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    # -- permissions (membership, not Django model perms) -------------------------------------
    def _may_view(self, request, obj=None):
        if request.user.is_superuser:
            return True
        ids = self._viewable_ids(request)
        if obj is None:
            return bool(ids)
        return self._org_id_of(obj) in ids

    def _may_write(self, request, obj=None):
        if not self.writable:
            return False
        ids = admin_org_ids(request)
        if ids is None:
            return True
        if obj is None:
            return bool(ids)
        return self._org_id_of(obj) in ids

    def has_module_permission(self, request):
        return self._may_view(request)

    def has_view_permission(self, request, obj=None):
        return self._may_view(request, obj)

    def has_add_permission(self, request, *args):
        return self._may_write(request)

    def has_change_permission(self, request, obj=None):
        return self._may_write(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self._may_write(request, obj)


class ReadOnlyScopedInline(OrgScopedAdminMixin, admin.TabularInline):
    """A read-only table of related rows on a parent's page (the parent decides visibility)."""

    writable = False
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = False

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_view_permission(self, request, obj=None):
        # obj is the parent; it was already scoped by the parent admin.
        return request.user.is_superuser or bool(visible_org_ids(request))


class OrgFilter(admin.SimpleListFilter):
    """List filter "By org" offering only the orgs the user may see — read from the memberships,
    not from a DISTINCT over the (possibly huge) filtered table."""

    title = "org"
    parameter_name = "org__id__exact"

    def lookups(self, request, model_admin):
        ids = model_admin._viewable_ids(request)
        orgs = Org.objects.all() if ids is None else Org.objects.filter(pk__in=ids)
        return [(str(pk), name) for pk, name in orgs.order_by("name").values_list("pk", "name")[:500]]

    def queryset(self, request, queryset):
        value = self.value()
        if not value:
            return queryset
        if not is_uuid(value):
            return queryset.none()
        return queryset.filter(org_id=value)
