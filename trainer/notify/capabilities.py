"""Optional extras a Notifier plugin may also derive from, beyond `trainer.plugins.Notifier.deliver`.

The delivery runner works with any plain Notifier. These let a provider do better where its API
allows: send many messages per request (Expo takes 100), confirm later whether a message really
reached the device (Expo receipts), and refuse an address at registration instead of at the first
delivery. They are candidates for trainer/plugins.py once a second provider needs them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

from trainer.plugins import Delivery, Notification, Target


@dataclass(frozen=True)
class Ticketed(Delivery):
    """A `sent` Delivery the provider will confirm later; `ticket` goes back to `check_receipts`."""

    ticket: str = ""


class BatchNotifier(ABC):
    """Delivers many (target, notification) pairs at once; one Delivery per pair, in order."""

    @abstractmethod
    async def deliver_many(self, items: Sequence[tuple[Target, Notification]]) -> list[Delivery]: ...


class ReceiptChecker(ABC):
    """Looks up what happened to messages that were accepted with a ticket.

    Returns a Delivery per ticket the provider has an answer for (`sent` = reached the device,
    `invalid_target` = the device is gone); tickets left out are not settled yet.
    """

    @abstractmethod
    async def check_receipts(self, tickets: Sequence[str]) -> dict[str, Delivery]: ...


class TargetChecker(ABC):
    """Validates an address when a device registers, so a malformed one is a clear 4xx at once."""

    @abstractmethod
    def check_target(self, address: str) -> None:
        """Raise ValueError with a one-line reason the user can act on."""
