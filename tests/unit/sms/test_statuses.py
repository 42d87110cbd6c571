"""The monotonic status rule (sms/statuses.py): pure, no database."""
import pytest

from sms.statuses import RANK, SendStatus, allowed_from, is_forward


@pytest.mark.parametrize("current,new", [
    ("queued", "sending"), ("queued", "sent"), ("queued", "failed"), ("sending", "sent"),
    ("sending", "delivered"), ("sending", "undelivered"), ("sending", "failed"), ("sent", "delivered"),
    ("sent", "undelivered"), ("sent", "failed"),
])
def test_forward_moves_are_allowed(current, new):
    assert is_forward(current, new)


@pytest.mark.parametrize("current,new", [
    ("sending", "queued"), ("sent", "sending"), ("sent", "sent"), ("delivered", "sent"),
    ("delivered", "undelivered"), ("undelivered", "delivered"), ("failed", "delivered"), ("failed", "sent"),
    ("suppressed", "sending"), ("sending", "sending"),
])
def test_backward_sideways_and_post_terminal_moves_are_refused(current, new):
    assert not is_forward(current, new)


def test_no_status_moves_into_queued():
    assert allowed_from(SendStatus.QUEUED) == []


def test_terminal_statuses_are_never_a_source():
    for status in SendStatus.ALL:
        assert not set(allowed_from(status)) & SendStatus.TERMINAL


def test_every_status_has_a_rank():
    assert set(RANK) == set(SendStatus.ALL)
