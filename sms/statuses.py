"""Send statuses and the monotonic rule — the one place it lives.

queued → sending → sent → delivered | undelivered | failed. `suppressed` and the
suppression-`failed` are set at acceptance. A status never moves backwards: a change is
applied only from a status of strictly lower rank (so a late `sent` after `delivered` is ignored),
and terminal statuses never change.
"""


class SendStatus:
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    FAILED = "failed"
    SUPPRESSED = "suppressed"

    CHOICES = [(QUEUED, "Queued"), (SENDING, "Sending"), (SENT, "Sent"), (DELIVERED, "Delivered"),
               (UNDELIVERED, "Undelivered"), (FAILED, "Failed"), (SUPPRESSED, "Suppressed")]
    ALL = [c[0] for c in CHOICES]
    TERMINAL = frozenset({DELIVERED, UNDELIVERED, FAILED, SUPPRESSED})


RANK = {
    SendStatus.QUEUED: 0,
    SendStatus.SENDING: 1,
    SendStatus.SENT: 2,
    SendStatus.DELIVERED: 3,
    SendStatus.UNDELIVERED: 3,
    SendStatus.FAILED: 3,
    SendStatus.SUPPRESSED: 3,
}


def allowed_from(new_status: str) -> list[str]:
    """Statuses a send may be in for `new_status` to be applied (strictly lower rank, not terminal)."""
    rank = RANK[new_status]
    return [s for s, r in RANK.items() if r < rank and s not in SendStatus.TERMINAL]


def is_forward(current: str, new_status: str) -> bool:
    return current in allowed_from(new_status)


class DispatchState:
    """Where a send is in dispatch (the API contract (README.md, /api/schema) v1.1 "Dispatch state"; the table in docs/architecture.md §8).

    None once the send is terminal or was never queued (refused at acceptance).

    | state             | status          | meaning                                                       | who moves it on            |
    |-------------------|-----------------|---------------------------------------------------------------|----------------------------|
    | pending           | queued          | accepted, waiting for a worker                                | the worker's claim; the sweeper re-enqueues after SMS_SWEEP_QUEUED_AFTER_SECONDS |
    | in_flight         | sending         | claimed; the provider call is under way                       | the worker; the sweeper reconciles after SMS_SWEEP_SENDING_AFTER_SECONDS (worker died) |
    | awaiting_provider | sending, sent   | the provider has it; waiting for its final report             | status callbacks; the sweeper asks the provider |
    | retrying          | sending         | the provider provably did not take attempt N; its retry is due | the retry task of attempt N only; the sweeper re-enqueues a lost one |
    | reconciling       | sending         | the outcome of an attempt is unknown; asking the provider     | the sweeper, until SMS_RECONCILE_DEADLINE_SECONDS |
    | parked            | sending         | reconciliation gave up: an operator decides (review_reason)   | an operator: failed or resend |
    """

    PENDING = "pending"
    IN_FLIGHT = "in_flight"
    AWAITING_PROVIDER = "awaiting_provider"
    RETRYING = "retrying"
    RECONCILING = "reconciling"
    PARKED = "parked"

    CHOICES = [(PENDING, "Pending (queued)"), (IN_FLIGHT, "In flight"), (AWAITING_PROVIDER, "Awaiting provider"),
               (RETRYING, "Retrying"), (RECONCILING, "Reconciling"), (PARKED, "Parked for an operator")]
    ALL = [c[0] for c in CHOICES]


def dispatch_state_after(status: str, current: str | None = None) -> str | None:
    """The dispatch state a status change leaves: none when terminal, awaiting the provider's report once
    `sent`, pending when `queued`; otherwise (a `sending` bookkeeping change) the current one."""
    if status in SendStatus.TERMINAL:
        return None
    if status == SendStatus.SENT:
        return DispatchState.AWAITING_PROVIDER
    if status == SendStatus.QUEUED:
        return DispatchState.PENDING
    return current


_REVIEW_PREFIX_STATES = (("retrying: ", DispatchState.RETRYING), ("reconciling: ", DispatchState.RECONCILING),
                         ("parked: ", DispatchState.PARKED))


def dispatch_state_for(*, status: str, provider_message_id: str = "", review_reason: str = "") -> str | None:
    """The state a send's other columns imply (test data, and the migration that introduced the field)."""
    if status == SendStatus.SENDING:
        for prefix, state in _REVIEW_PREFIX_STATES:
            if (review_reason or "").startswith(prefix):
                return state
        return DispatchState.AWAITING_PROVIDER if provider_message_id else DispatchState.IN_FLIGHT
    return dispatch_state_after(status)
