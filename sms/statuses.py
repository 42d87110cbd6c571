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
