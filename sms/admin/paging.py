"""List pages that stay fast on tables of millions of rows.

Django's changelist counts the filtered rows (`SELECT COUNT(*)`) on every page, and — unless
`show_full_result_count = False` — the whole table too. On a million-row table each count reads the
whole index. `CappedCountPaginator` counts at most `COUNT_CAP + 1` rows (`COUNT(*)` over a
`LIMIT`ed subquery: a short index walk), so a page costs the same at 10 thousand rows as at 10 million;
beyond the cap the page says "more than 10,000" (templates/admin/pagination.html) and offers the first `COUNT_CAP / per page` pages
(narrow the list with a filter, a date or a search to go further). `LargeTableAdminMixin` wires it in.
"""
from django.core.paginator import Paginator
from django.utils.functional import cached_property

COUNT_CAP = 10_000


class CappedCountPaginator(Paginator):
    count_cap = COUNT_CAP

    @cached_property
    def count(self) -> int:
        qs = self.object_list
        if not hasattr(qs, "query"):
            return len(qs)
        # Keeps the list's ORDER BY: the count then walks the same index as the page, and stops at the cap.
        n = qs.select_related(None).values("pk")[: self.count_cap + 1].count()
        self.capped = n > self.count_cap
        return min(n, self.count_cap)

    capped = False


class LargeTableAdminMixin:
    """For a ModelAdmin over a table that grows without bound (sends, audit entries, suppressions)."""

    paginator = CappedCountPaginator
    show_full_result_count = False  # no unfiltered COUNT(*) beside the filtered one

    def get_queryset(self, request):
        """A superuser's all-orgs list names every org: `org_id IN (…all…)` restricts nothing, but lets
        PostgreSQL use the per-org (org, field, -created_at) indexes for a rare filter value (a bitmap
        over each org's entries) where it would otherwise walk (-created_at) or scan the table. For a
        common value it still walks (-created_at, -id). Entries without an org (system audit entries)
        stay listed."""
        qs = super().get_queryset(request)
        if request.user.is_superuser and getattr(self, "org_lookup", None) == "org":
            from django.db.models import Q

            from orgs.models import Org

            all_orgs = Q(org_id__in=list(Org.objects.values_list("pk", flat=True)))
            qs = qs.filter(all_orgs | Q(org_id__isnull=True) if self.model._meta.get_field("org").null else all_orgs)
        return qs

    def get_changelist_instance(self, request):
        cl = super().get_changelist_instance(request)
        cl.count_capped = getattr(cl.paginator, "capped", False)
        return cl


class FixedChoicesFilter:
    """Builds a SimpleListFilter over a field with a fixed list of values — never the
    `SELECT DISTINCT field` over the whole table that Django's default filter for a field without
    choices runs on every page."""

    @staticmethod
    def make(field: str, title: str, choices, parameter_name: str | None = None):
        from django.contrib import admin

        values = {str(value) for value, _ in choices}

        class _Filter(admin.SimpleListFilter):
            pass

            def lookups(self, request, model_admin):
                return list(choices)

            def queryset(self, request, queryset):
                value = self.value()
                if value is None:
                    return queryset
                if value not in values:
                    return queryset.none()
                return queryset.filter(**{field: value})

        _Filter.title = title
        _Filter.parameter_name = parameter_name or field  # keep the URL Django's field filter used
        _Filter.__name__ = f"{field.title().replace('_', '')}Filter"
        return _Filter
