"""The lifecycle's one transition table: which action moves an order from where to where, and who may."""

from dataclasses import dataclass
from enum import StrEnum

from models.enums import ActorKind, Status

S = Status
A = ActorKind


class Action(StrEnum):
    SCREEN_OUT = "screen_out"
    MERGE = "merge"
    ANSWER = "answer"
    DISPATCH = "dispatch"
    SIGN = "sign"
    REQUEST_RETURN = "request_return"
    APPROVE_RETURN = "approve_return"
    REJECT_RETURN = "reject_return"
    REDISPATCH = "redispatch"
    REPLY = "reply"
    APPROVE_REPLY = "approve_reply"
    SEND_BACK = "send_back"
    CLOSE = "close"
    REDO = "redo"


@dataclass(frozen=True)
class Rule:
    """One row of the table: from these statuses, to that one, by these actors, logged as that event."""

    sources: frozenset[Status]
    target: Status
    actors: frozenset[ActorKind]
    event: str


def _rule(sources: set[Status], target: Status, actors: set[ActorKind], event: str) -> Rule:
    return Rule(frozenset(sources), target, frozenset(actors), event)


# The whole lifecycle on one screen. SYSTEM appears wherever the automatic step or a replayed history acts.
TRANSITIONS: dict[Action, Rule] = {
    Action.SCREEN_OUT: _rule({S.RECEIVED}, S.INVALID, {A.STAFF, A.SYSTEM}, "work_order_screened_out"),
    Action.MERGE: _rule({S.RECEIVED}, S.MERGED, {A.STAFF, A.SYSTEM}, "work_order_merged"),
    Action.ANSWER: _rule({S.RECEIVED}, S.ANSWERED, {A.STAFF, A.SYSTEM}, "work_order_answered"),
    Action.DISPATCH: _rule({S.RECEIVED}, S.DISPATCHED, {A.STAFF, A.SYSTEM}, "work_order_dispatched"),
    Action.SIGN: _rule({S.DISPATCHED}, S.HANDLING, {A.UNIT}, "work_order_signed"),
    Action.REQUEST_RETURN: _rule({S.DISPATCHED}, S.RETURN_REQUESTED, {A.UNIT}, "return_requested"),
    Action.APPROVE_RETURN: _rule({S.RETURN_REQUESTED}, S.DISPATCHED, {A.SUPERVISOR}, "return_approved"),
    Action.REJECT_RETURN: _rule({S.RETURN_REQUESTED}, S.DISPATCHED, {A.SUPERVISOR, A.SYSTEM}, "return_rejected"),
    Action.REDISPATCH: _rule({S.DISPATCHED, S.HANDLING}, S.DISPATCHED, {A.SUPERVISOR}, "work_order_redispatched"),
    Action.REPLY: _rule({S.HANDLING}, S.REPLIED, {A.UNIT}, "reply_submitted"),
    Action.APPROVE_REPLY: _rule({S.REPLIED}, S.VISITING, {A.SUPERVISOR, A.SYSTEM}, "reply_approved"),
    Action.SEND_BACK: _rule({S.REPLIED}, S.HANDLING, {A.SUPERVISOR}, "reply_sent_back"),
    Action.CLOSE: _rule({S.VISITING}, S.CLOSED, {A.STAFF, A.SYSTEM}, "work_order_closed"),
    Action.REDO: _rule({S.VISITING}, S.HANDLING, {A.STAFF, A.SYSTEM}, "work_order_reopened"),
}

# Actions a unit takes as the order's lead; anything a unit does needs an active assignment.
UNIT_LEAD_ACTIONS = frozenset({Action.SIGN, Action.REQUEST_RETURN, Action.REPLY})


def allowed_actions(status: Status) -> list[Action]:
    """Actions the table allows from a status, in table order."""
    return [action for action, rule in TRANSITIONS.items() if status in rule.sources]


def check_table() -> None:
    """Refuse a table that names an unknown status or leaves a non-final status without a way out."""
    from models.enums import FINAL_STATUSES

    reachable = {S.RECEIVED} | {rule.target for rule in TRANSITIONS.values()}
    missing = set(Status) - reachable
    if missing:
        raise ValueError(f"statuses no transition reaches: {sorted(missing)}")
    for status in set(Status) - FINAL_STATUSES:
        if not allowed_actions(status):
            raise ValueError(f"non-final status {status} has no transition out")


check_table()
