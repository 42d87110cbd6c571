"""Search by phone number in any common format: the term is normalised to E.164 with the same
function the API uses (sms.phones.normalize_phone), then matched exactly; other terms fall back to
Django's usual search."""
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
            if e164:
                return queryset.filter(**{self.phone_field: e164}), False
        return super().get_search_results(request, queryset, search_term)
