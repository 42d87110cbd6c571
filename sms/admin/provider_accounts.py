"""Dashboard → SMS → Provider: an org's provider accounts (Twilio, MessageBird, Sinch), one per provider,
each with its priority, enabled flag, health, Test connection and the webhook URLs to paste into the
provider's console. Secrets are write-only everywhere (password inputs never filled in, blank keeps).

Twilio: an org's Twilio credentials.

The auth token is write-only: a password input that is never filled in, blank keeps the stored
token, and it is never rendered, logged or echoed in an error. Saving goes through
`provider_account_set_twilio` (validates, encrypts, audits); the From number is picked from the
numbers the account owns or typed by hand when the list cannot be fetched.

The numbers are fetched from Twilio only on demand — the page's “Load numbers” button posts to
`numbers_view`, which runs outside any database transaction — and kept for NUMBERS_CACHE_SECONDS, so
rendering the page never calls Twilio (Django renders the change form inside `transaction.atomic()`: a
slow Twilio there would hold a connection and a transaction open), and reloading it does not either.
"""
import hashlib

from django import forms
from django.contrib import admin, messages
from django.core.cache import cache
from django.http import HttpResponseRedirect, JsonResponse
from django.urls import path, reverse
from django.utils.decorators import method_decorator
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST

from audit.services import Actor, RequestContext
from sendora_sms.errors import SendoraError
from sms.admin.scoping import OrgScopedAdminMixin, admin_orgs, can_admin_org, is_uuid
from sms.models import Provider, ProviderAccount
from sms.services.failover import provider_health
from sms.services.provider_accounts import (
    SINCH_REGIONS,
    provider_account_list_numbers,
    provider_account_set,
    provider_account_test_connection,
    provider_webhook_urls,
    validate_account_sid,
)

TOKEN_HELP = "Write-only: it is stored encrypted and never shown. Leave blank to keep the current token."
FROM_HELP = "One of the SMS-capable numbers this Twilio account owns."
NUMBERS_CACHE_SECONDS = 60
MANUAL_HELP = ("Or type the From number in E.164 (+15551234567) — used when the list above cannot be fetched "
               "or the number is not listed. Takes precedence over the list when filled in.")


def _numbers_cache_key(org, account_sid: str, auth_token: str | None) -> str:
    """Per org, SID and credentials: a typed token by its digest (never the token itself), the stored
    one by the account's last change (a new token saved is a new key)."""
    if auth_token:
        secret = "typed:" + hashlib.sha256(auth_token.strip().encode()).hexdigest()
    else:
        account = ProviderAccount.objects.filter(org=org, provider="twilio").only("updated_at").first()
        secret = f"stored:{account.updated_at.isoformat() if account else '-'}"
    digest = hashlib.sha256(f"{org.pk}|{account_sid.strip()}|{secret}".encode()).hexdigest()
    return f"sendora:twilio-numbers:{digest}"


def _requested_provider(request, obj=None) -> str:
    """The provider an add/change page is about: the object's, else `?provider=` (default twilio)."""
    if obj is not None:
        return obj.provider
    value = (request.GET.get("provider") or request.POST.get("provider") or "twilio").strip().lower()
    return value if value in dict(Provider.ACCOUNT_CHOICES) else "twilio"


ENABLED_CHOICES = [("", "— keep (enabled for a new account) —"), ("1", "Enabled"), ("0", "Disabled")]


class RoutingFields(forms.Form):
    """Priority and enabled flag of any provider's account; blank keeps the stored values."""

    priority = forms.IntegerField(label="Priority", required=False, min_value=1, max_value=100,
                                  help_text="1 is tried first; ties broken by provider name. Blank keeps "
                                            "(1 for a new account).")
    enabled = forms.TypedChoiceField(label="Enabled", required=False, choices=ENABLED_CHOICES,
                                     coerce=lambda v: v == "1", empty_value=None)


class TwilioAccountForm(RoutingFields, forms.ModelForm):
    """Validates the fields, then saves through the service inside validation, so that the
    service's own refusals (bad SID, bad number, missing token) come back as form errors."""

    auth_token = forms.CharField(
        label="Auth Token", required=False, strip=True, help_text=TOKEN_HELP,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
    )
    from_number = forms.CharField(label="From number", required=False, help_text=FROM_HELP,
                                  widget=forms.Select(choices=[("", "— pick a number —")]))
    from_number_manual = forms.CharField(label="…or enter it manually", required=False, help_text=MANUAL_HELP,
                                         max_length=32)

    # Set by ProviderAccountAdmin.get_form.
    request = None

    class Meta:
        model = ProviderAccount
        fields = ["org", "account_sid"]
        labels = {"account_sid": "Account SID"}
        help_texts = {"account_sid": "Starts with AC followed by 32 hexadecimal characters (Twilio Console)."}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        current = self.instance.from_number if self.instance.pk else ""
        if current and "from_number" in self.fields:
            self.fields["from_number"].widget.choices = [("", "— pick a number —"), (current, current)]
            self.fields["from_number"].initial = current

    def clean_account_sid(self):
        try:
            return validate_account_sid(self.cleaned_data.get("account_sid", ""))
        except SendoraError as exc:
            raise forms.ValidationError(exc.message, code=exc.code) from None

    def clean(self):
        data = super().clean()
        chosen = (data.get("from_number_manual") or "").strip() or (data.get("from_number") or "").strip()
        if not chosen:
            self.add_error("from_number", "Pick the From number from the list or enter it manually.")
        data["from_number"] = chosen
        return data

    def _post_clean(self):
        super()._post_clean()  # model validation, incl. "this org already has a provider account"
        if self.errors:
            return
        org = self.instance.org if self.instance.pk else self.cleaned_data["org"]
        try:
            self.saved_account = provider_account_set(
                org=org, provider="twilio", account_id=self.cleaned_data["account_sid"],
                sender=self.cleaned_data["from_number"], secrets={"auth_token": self.cleaned_data.get("auth_token")},
                priority=self.cleaned_data.get("priority"), enabled=self.cleaned_data.get("enabled"),
                actor=Actor.user(self.request.user), context=RequestContext.from_request(self.request),
            )
        except SendoraError as exc:
            field = {"invalid_phone_number": "from_number", "auth_token_required": "auth_token",
                     "invalid_account_sid": "account_sid"}.get(exc.code)
            if field == "from_number" and self.cleaned_data.get("from_number_manual"):
                field = "from_number_manual"
            self.add_error(field, exc.message)

    def save(self, commit=True):
        # The service already saved (and audited) the account in _post_clean.
        return self.saved_account

    def save_m2m(self):  # nothing to save; admin calls this via save_related
        pass


SECRET_WIDGET = forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"})
SECRET_HELP = "Write-only: stored encrypted and never shown. Leave blank to keep the current one."


class _OtherProviderForm(RoutingFields, forms.ModelForm):
    """MessageBird / Sinch: validated and saved through provider_account_set (encrypts, audits)."""

    provider_name = ""
    secret_names: tuple = ()
    sender = forms.CharField(label="Sender", max_length=20)
    request = None

    class Meta:
        model = ProviderAccount
        fields = ["org"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["sender"].initial = self.instance.from_number
            if "account_id" in self.fields:
                self.fields["account_id"].initial = self.instance.account_sid
                self.fields["region"].initial = self.instance.region

    def _post_clean(self):
        super()._post_clean()
        if self.errors:
            return
        org = self.instance.org if self.instance.pk else self.cleaned_data["org"]
        try:
            self.saved_account = provider_account_set(
                org=org, provider=self.provider_name, sender=self.cleaned_data["sender"],
                account_id=self.cleaned_data.get("account_id") or "", region=self.cleaned_data.get("region") or "",
                secrets={name: self.cleaned_data.get(name) for name in self.secret_names},
                priority=self.cleaned_data.get("priority"), enabled=self.cleaned_data.get("enabled"),
                actor=Actor.user(self.request.user), context=RequestContext.from_request(self.request))
        except SendoraError as exc:
            details = getattr(exc, "details", None) or {}
            field = {"invalid_phone_number": "sender", "invalid_service_plan_id": "account_id",
                     "invalid_region": "region"}.get(exc.code)
            if exc.code == "secret_required":
                missing = [f for f in details.get("fields", []) if f in self.fields]
                field = missing[0] if missing else None
            self.add_error(field, exc.message)

    def save(self, commit=True):
        return self.saved_account

    def save_m2m(self):  # nothing to save; admin calls this via save_related
        pass


class MessageBirdAccountForm(_OtherProviderForm):
    provider_name = "messagebird"
    secret_names = ("access_key", "signing_key")
    access_key = forms.CharField(label="Access key", required=False, strip=True, widget=SECRET_WIDGET,
                                 help_text=SECRET_HELP + " MessageBird dashboard → Developers → API access (live key).")
    signing_key = forms.CharField(label="Signing key", required=False, strip=True, widget=SECRET_WIDGET,
                                  help_text=SECRET_HELP + " MessageBird dashboard → Developers → Settings → "
                                            "Signing key (signs the webhooks; not the access key).")
    sender = forms.CharField(label="Originator", max_length=20,
                             help_text="A number you own at MessageBird (E.164) or an alphanumeric name (≤ 11).")


class SinchAccountForm(_OtherProviderForm):
    provider_name = "sinch"
    secret_names = ("api_token", "callback_secret")
    account_id = forms.CharField(label="Service plan id", max_length=64,
                                 help_text="Sinch dashboard → SMS → APIs → your service plan.")
    region = forms.ChoiceField(label="Region", choices=[(r, r.upper()) for r in SINCH_REGIONS])
    api_token = forms.CharField(label="API token", required=False, strip=True, widget=SECRET_WIDGET,
                                help_text=SECRET_HELP + " Shown with the service plan in the Sinch dashboard.")
    callback_secret = forms.CharField(label="Callback secret", required=False, strip=True, widget=SECRET_WIDGET,
                                      help_text=SECRET_HELP + " The HMAC secret Sinch signs callbacks with (set up "
                                                "for the service plan through your Sinch account manager).")
    sender = forms.CharField(label="Sender number", max_length=20, help_text="A number of the service plan (E.164).")


PROVIDER_FORMS = {"twilio": TwilioAccountForm, "messagebird": MessageBirdAccountForm, "sinch": SinchAccountForm}
PROVIDER_FIELDSETS = {
    "twilio": [("Twilio", {"fields": ["org", "account_sid", "auth_token", "from_number", "from_number_manual"]}),
               ("Routing", {"fields": ["priority", "enabled"]})],
    "messagebird": [("MessageBird", {"fields": ["org", "access_key", "signing_key", "sender"]}),
                    ("Routing", {"fields": ["priority", "enabled"]})],
    "sinch": [("Sinch", {"fields": ["org", "account_id", "region", "api_token", "callback_secret", "sender"]}),
              ("Routing", {"fields": ["priority", "enabled"]})],
}
SENSITIVE = ("auth_token", "access_key", "signing_key", "api_token", "callback_secret")


@method_decorator(sensitive_post_parameters(*SENSITIVE), name="changeform_view")
class ProviderAccountAdmin(OrgScopedAdminMixin, admin.ModelAdmin):
    form = TwilioAccountForm
    list_display = ["org", "provider", "account_sid", "from_number", "priority", "enabled", "health", "updated_at"]
    list_select_related = ["org"]
    search_fields = ["org__name", "account_sid", "from_number"]
    actions = ["test_connection_action"]
    change_form_template = "admin/sms/provideraccount/change_form.html"

    def get_fieldsets(self, request, obj=None):
        if obj is not None and not self.has_change_permission(request, obj):
            # Read-only (plain members): never list the token — the model's auth_token() would decrypt it.
            return [(None, {"fields": ["org", "provider", "account_sid", "from_number", "priority", "enabled",
                                       "updated_at"]})]
        return PROVIDER_FIELDSETS[_requested_provider(request, obj)]

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and not self.has_change_permission(request, obj):
            return ["org", "provider", "account_sid", "from_number", "priority", "enabled", "updated_at"]
        return ["org"] if obj is not None else []

    def get_form(self, request, obj=None, change=False, **kwargs):
        kwargs["form"] = PROVIDER_FORMS[_requested_provider(request, obj)]
        form = super().get_form(request, obj, change, **kwargs)
        return type(form.__name__, (form,), {"request": request})

    @admin.display(description="Health")
    def health(self, obj):
        health = provider_health(org_id=obj.org_id, provider=obj.provider)
        rate = "—" if health.success_rate is None else f"{health.success_rate:.0%}"
        if health.demoted_until:
            return f"demoted until {health.demoted_until:%H:%M:%S} UTC (success {rate})"
        return f"healthy (success {rate})"

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "provider_choices": Provider.ACCOUNT_CHOICES}
        return super().changelist_view(request, extra_context)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if db_field.name == "org":  # only orgs that have no credentials yet can be added
            provider = _requested_provider(request)
            field.queryset = field.queryset.exclude(provider_accounts__provider=provider)
        return field

    def save_model(self, request, obj, form, change):
        """Nothing to do: the form saved through the service (provider_account_set)."""

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        """Never calls Twilio: the From select holds the current number, plus the account's numbers when
        “Load numbers” fetched them in the last NUMBERS_CACHE_SECONDS."""
        adminform = context.get("adminform")
        form = adminform.form if adminform else None
        numbers_note = ""
        if form is not None and "from_number" in form.fields:
            if obj is not None:
                current = obj.from_number
                numbers = cache.get(_numbers_cache_key(obj.org, obj.account_sid, None))
                options = sorted(set(numbers or []) | ({current} if current else set()))
                form.fields["from_number"].widget.choices = [("", "— pick a number —")] + [(n, n) for n in options]
                if numbers is None:
                    numbers_note = ("Press “Load numbers” to pick from the numbers this Twilio account owns — "
                                    "or enter the From number manually.")
                elif current not in numbers:
                    numbers_note = (f"The current From number {current} is not among the numbers this account owns "
                                    "(or it lost SMS capability).")
            else:
                numbers_note = ("Enter the Account SID and Auth Token, then press “Load numbers” to pick from the "
                                "numbers the account owns — or enter the From number manually.")
        provider = _requested_provider(request, obj)
        org_id = obj.org_id if obj is not None else None
        context.update({
            "provider_name": dict(Provider.ACCOUNT_CHOICES)[provider],
            "webhook_urls": provider_webhook_urls(org_id=org_id, provider=provider) if org_id else None,
            "provider_health": provider_health(org_id=org_id, provider=provider) if org_id else None,
            "numbers_note": numbers_note,
            "numbers_url": reverse("admin:sms_provideraccount_numbers"),
            "object_id_value": obj.pk if obj is not None else "",
        })
        return super().render_change_form(request, context, add, change, form_url, obj)

    # -- extra views ----------------------------------------------------------------------------
    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        return [
            path("numbers/", self.admin_site.admin_view(self.numbers_view), name="%s_%s_numbers" % info),
            path("<path:object_id>/test-connection/", self.admin_site.admin_view(self.test_connection_view),
                 name="%s_%s_test_connection" % info),
        ] + super().get_urls()

    @method_decorator(sensitive_post_parameters("auth_token"))
    @method_decorator(require_POST)
    def numbers_view(self, request):
        """JSON for the page's “Load numbers” button: the numbers owned by the typed credentials."""
        org_id = request.POST.get("org", "")
        object_id = request.POST.get("object_id", "")
        if object_id:
            account = self.get_object(request, object_id)
            org = account.org
        else:
            org = admin_orgs(request).filter(pk=org_id).first() if is_uuid(org_id) else None
            if org is None:
                return JsonResponse({"error": "Choose the org first."}, status=400)
        if not can_admin_org(request, org.pk):
            return JsonResponse({"error": "Only the org's owners and admins may change its provider."}, status=403)
        account_sid = request.POST.get("account_sid", "").strip()
        auth_token = request.POST.get("auth_token") or None
        key = _numbers_cache_key(org, account_sid, auth_token)
        numbers = cache.get(key)
        if numbers is None:
            try:
                numbers = provider_account_list_numbers(account_sid=account_sid, auth_token=auth_token, org=org)
            except SendoraError as exc:
                return JsonResponse({"error": exc.message}, status=400 if exc.http_status < 500 else 502)
            cache.set(key, numbers, NUMBERS_CACHE_SECONDS)
        return JsonResponse({"numbers": numbers})

    @method_decorator(require_POST)
    def test_connection_view(self, request, object_id):
        account = self.get_object(request, object_id)  # scoped: another org's account is 404
        self._report_connection(request, account)
        return HttpResponseRedirect(reverse("admin:sms_provideraccount_change", args=[account.pk]))

    @admin.action(description="Test connection")
    def test_connection_action(self, request, queryset):
        for account in queryset.select_related("org"):
            self._report_connection(request, account)

    def _report_connection(self, request, account):
        result = provider_account_test_connection(org=account.org, provider=account.provider)
        level = messages.SUCCESS if result.ok else messages.ERROR
        self.message_user(request, f"{account.org.name}: {result.message}", level)

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def has_delete_permission(self, request, obj=None):
        return False  # removing credentials is not a dashboard operation (no service for it)
