"""Search by phone number in any common format: the term is normalised to E.164 with the same
function the API uses (sms.phones.normalize_phone), then matched exactly through the (org, number)
index. A term that is not a phone number matches nothing (no `LIKE '%…%'` over millions of rows)."""
from orgs.models import Org
from sms.phones import InvalidPhoneNumber, normalize_phone


class PhoneSearchMixin:
    phone_field = "phone_number"

    def get_search_results(self, request, queryset, search_term):
        term = (search_term or "").strip()
        if term:
            try:
                e164 = normalize_phone(term)
            except InvalidPhoneNumber:
                e164 = None
            if not e164:
                return queryset.none(), False
            queryset = queryset.filter(**{self.phone_field: e164})
            if request.user.is_superuser:
                # All orgs: name them, so PostgreSQL probes the (org, number) index once per org
                # instead of scanning the table for the number.
                queryset = queryset.filter(org_id__in=list(Org.objects.values_list("pk", flat=True)))
            return queryset, False
        return super().get_search_results(request, queryset, search_term)
