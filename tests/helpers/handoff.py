"""What the send path handed to the dispatch workers: its DispatchHandoff rows (sms/services/handoff.py)."""
from __future__ import annotations


class HandedOff:
    """The ids (str) of the sends with a waiting dispatch hand-off row, oldest first, read when compared:
    `handed_off == [send_id]`, `len(handed_off)`. In embedded mode nothing is written (the send runs in-process)."""

    def ids(self) -> list[str]:
        from sms.models import DispatchHandoff

        return [str(send_id) for send_id in DispatchHandoff.objects.order_by("id").values_list("send_id", flat=True)]

    def __eq__(self, other) -> bool:
        return self.ids() == list(other)

    def __len__(self) -> int:
        return len(self.ids())

    def __iter__(self):
        return iter(self.ids())

    def __repr__(self) -> str:
        return f"HandedOff({self.ids()!r})"
