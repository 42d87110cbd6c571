"""Search by phone number in any common format: the term is normalised to E.164 with the same
function the API uses (sms.phones.normalize_phone), then matched exactly through the (org, number)
index. A term that is not a phone number matches nothing (no `LIKE '%…%'` over millions of rows)."""
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
            # A superuser's list names every org (LargeTableAdminMixin), so PostgreSQL probes the
            # (org, number) index once per org instead of scanning the table for the number.
            return queryset.filter(**{self.phone_field: e164}), False
        return super().get_search_results(request, queryset, search_term)
