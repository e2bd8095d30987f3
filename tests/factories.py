"""Orders driven to any status through the real transition() path."""

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from duban.db import session_scope
from models.enums import ActorKind, Status
from models.lifecycle import Action
from models.directory import Unit
from models.work_order import Assignment
from tasks.orders import create_order
from tasks.transitions import Actor, transition

T0 = datetime(2021, 3, 15, 1, 0, tzinfo=UTC)  # Monday 09:00 in Zhuzhou
SUPERVISOR = Actor(ActorKind.SUPERVISOR, "supervisor-wang")
STAFF = Actor(ActorKind.STAFF, "staff-li")
SYSTEM = Actor.system()

# The shortest real path to each status, from received.
PATHS: dict[Status, list[Action]] = {
    Status.RECEIVED: [],
    Status.INVALID: [Action.SCREEN_OUT],
    Status.MERGED: [Action.MERGE],
    Status.ANSWERED: [Action.ANSWER],
    Status.DISPATCHED: [Action.DISPATCH],
    Status.RETURN_REQUESTED: [Action.DISPATCH, Action.REQUEST_RETURN],
    Status.HANDLING: [Action.DISPATCH, Action.SIGN],
    Status.REPLIED: [Action.DISPATCH, Action.SIGN, Action.REPLY],
    Status.VISITING: [Action.DISPATCH, Action.SIGN, Action.REPLY, Action.APPROVE_REPLY],
    Status.CLOSED: [Action.DISPATCH, Action.SIGN, Action.REPLY, Action.APPROVE_REPLY, Action.CLOSE],
}


def new_order(*, category: str = "city_appearance_life_services.noise", item_type: str = "complaint",
              at: datetime = T0, **fields) -> int:
    """A received complaint; returns its id."""
    with session_scope() as session:
        order = create_order(session=session, channel="hotline", item_type=item_type, content="夜间施工噪音扰民",
                             category_code=category, district_code=None, at=at,
                             citizen_name="张三", citizen_phone="13812341234", **fields)
        return order.id


def lead_actor(order_id: int) -> Actor:
    """The active lead unit of an order, as an actor."""
    with session_scope(readonly=True) as session:
        unit = session.scalars(
            select(Unit).join(Assignment, Assignment.unit_id == Unit.id)
            .where(Assignment.work_order_id == order_id, Assignment.active.is_(True), Assignment.role == "lead")
        ).first()
        # An order no unit holds yet still gets a unit actor, so the refusal can be tested.
        return Actor.unit(unit.id, unit.code) if unit else Actor.unit(0, "no-unit")


def other_unit(order_id: int) -> str:
    """A unit code that does not hold the order."""
    with session_scope(readonly=True) as session:
        held = set(session.scalars(select(Assignment.unit_id).where(Assignment.work_order_id == order_id)))
        return session.scalars(select(Unit.code).where(Unit.id.not_in(held or {0})).order_by(Unit.id)).first()


def step(order_id: int, action: Action, at: datetime) -> None:
    """Apply one action with a fitting actor and payload."""
    actor, payload = actor_and_payload(order_id, action)
    transition(order_id=order_id, action=action, actor=actor, at=at, payload=payload)


def actor_and_payload(order_id: int, action: Action) -> tuple[Actor, dict]:
    """An actor allowed to take the action and a payload it accepts."""
    match action:
        case Action.SIGN:
            return lead_actor(order_id), {}
        case Action.REQUEST_RETURN:
            return lead_actor(order_id), {"reason": "不属于本单位职责", "evidence_note": "已到现场核实",
                                          "evidence_files": ["photo-1.jpg"]}
        case Action.REPLY:
            return lead_actor(order_id), {"text": "已到现场处理，噪音已停止", "contacted": True, "solved": True}
        case Action.APPROVE_RETURN | Action.REDISPATCH:
            return SUPERVISOR, {"unit_code": other_unit(order_id), "reason": "职责调整"}
        case Action.REJECT_RETURN | Action.SEND_BACK:
            return SUPERVISOR, {"reason": "请到现场核实后再答复"}
        case Action.APPROVE_REPLY:
            return SUPERVISOR, {}
        case Action.CLOSE:
            return STAFF, {"satisfaction": "satisfied", "contacted": True, "resolved": True}
        case Action.REDO:
            return STAFF, {"satisfaction": "unsatisfied", "contacted": True, "resolved": False}
        case Action.MERGE:
            return STAFF, {"master_id": new_order()}
        case _:
            return STAFF, {}


def order_in(status: Status, at: datetime = T0) -> int:
    """A fresh order brought to `status` by the real path."""
    order_id = new_order(at=at)
    for i, action in enumerate(PATHS[status]):
        step(order_id, action, at + timedelta(minutes=10 * (i + 1)))
    return order_id
