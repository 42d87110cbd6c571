"""The SMS write paths. Callers import from `sms.services`; each area lives in its own module."""
from sms.services.provider_accounts import provider_account_set_twilio, provider_accounts_rotate_encryption  # noqa: F401
from sms.services.sends import SendCreateResult, send_create, send_rejection_record  # noqa: F401
from sms.services.counters import send_counts_add, send_counts_move  # noqa: F401
from sms.services.events import event_record, events_publish  # noqa: F401,E402
from sms.services.status import send_apply_status  # noqa: F401,E402
from sms.services.suppressions import (  # noqa: F401,E402
    ImportReport, suppression_create, suppression_delete, suppression_ensure, suppression_lift, suppressions_export,
    suppressions_import,
)
from sms.services.dispatch import send_dispatch, send_reconcile  # noqa: F401,E402
from sms.services.sweeper import sends_reconcile_stuck, sends_requeue_stranded, sends_sweep  # noqa: F401,E402
from sms.services.review import send_resolve_parked  # noqa: F401,E402
