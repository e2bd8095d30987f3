"""Duban's error hierarchy: every error a person may see says what was wrong and how to fix it."""


class DubanError(Exception):
    """Base of every error Duban raises on purpose."""


class NotFound(DubanError):
    """A referenced row (order, unit, category, token) does not exist."""


class InvalidTransition(DubanError):
    """An event is not allowed from the order's current status, or not for this actor."""

    def __init__(self, order_number: str, status: str, event: str, reason: str = "") -> None:
        self.order_number, self.status, self.event = order_number, status, event
        detail = f": {reason}" if reason else ""
        super().__init__(f"work order {order_number} is {status!s}; event {event!s} is not allowed{detail}")


class Conflict(DubanError):
    """Someone else changed the order first; reload and decide again."""

    def __init__(self, order_number: str, expected: int, actual: int | None = None) -> None:
        self.order_number, self.expected, self.actual = order_number, expected, actual
        now = f" (now version {actual})" if actual is not None else ""
        super().__init__(
            f"work order {order_number} was changed by someone else since version {expected}{now}; "
            "reload it and try again"
        )


class Forbidden(DubanError):
    """The actor may not do this to this order."""


class PolicyError(DubanError):
    """policy.yaml (or a directory file) is invalid; the message lists every problem with its key and line."""


class CalendarNotCovered(DubanError, ValueError):
    """A deadline reaches a year whose holidays nobody has entered yet."""

    def __init__(self, year: int) -> None:
        self.year = year
        super().__init__(
            f"the working calendar does not cover {year}: enter {year}'s holidays and make-up working days "
            f"in policy.yaml under calendar (holidays, workdays, years: [{year}]) and apply it"
        )


class NotificationError(DubanError):
    """A notice could not be rendered or sent."""


class ValidationFailed(DubanError):
    """Input (an intake item, an import line, a form) is invalid; nothing was written."""
