"""How one synthetic order lives: who acts on it and when, timed against the policy's own limits.

Steps land at a share of each stage's limit in working time, so a diligent unit acts well before the
warning rung; late units overrun, buck-passers ask to return, false closers say solved when nobody
came. Every step is an action of the transition table with the actor the table allows.
"""

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from models.calendar import Amount, add_working_time
from models.enums import ActorKind
from models.lifecycle import Action
from models.policy import Policy
from models.policy_values import category_matches
from tasks.history_format import EventRecord

ON_SITE_REJECTION = "在须现场核实的类别中退单未附现场核实证据（照片或核实说明），系统自动驳回"
TYPE_ZH = {"consultation": "咨询", "help_request": "求助", "complaint": "投诉", "report": "举报", "suggestion": "建议",
           "praise": "表扬"}
MINUTE = timedelta(minutes=1)


@dataclass(slots=True)
class Item:
    """One order of the synthetic year, before it is written."""

    kind: str  # valid, invalid or merged
    at: datetime
    channel: str
    item_type: str
    sub: str | None
    district: str | None
    handed: bool = False
    urgency: str = "normal"
    number: str = ""
    lead: str = ""
    assists: tuple[str, ...] = ()
    master: str = ""
    steps: list[EventRecord] = field(default_factory=list)
    approved_at: datetime | None = None
    final_lead: str = ""
    adopted: bool | None = None


@dataclass(frozen=True)
class Traits:
    """Which units misbehave, and how often."""

    buck_passers: frozenset[str]
    late: frozenset[str]
    false_closers: frozenset[str]
    return_share: float
    late_share: float
    send_back_share: float


class Lives:
    """Builds each order's steps against the policy, from one random stream."""

    def __init__(self, policy: Policy, rng: random.Random, traits: Traits, names: dict[str, str],
                 alternatives: dict[str, str]) -> None:
        self.policy, self.rng, self.traits, self.names = policy, rng, traits, names
        self.calendar = policy.work_calendar()
        self.alternatives = alternatives
        self.on_site = tuple(policy.escalation.buck_passing.on_site_categories)

    def _after(self, item: Item, start: datetime, stage: str, fraction: float) -> datetime:
        limit = self.policy.time_limit(stage, item_type=item.item_type, urgency=item.urgency, category=item.sub)
        moment = add_working_time(start, Amount(limit.value * max(fraction, 0.005), limit.unit), self.calendar)
        return max(moment.replace(microsecond=0), start)

    def _alternative(self, item: Item, lead: str) -> str:
        """Another unit to take a returned order: not the one returning it, nor one already assisting."""
        district = f"{item.district}_gov" if item.district else ""
        for code in (self.alternatives.get(lead, ""), district, "civil_affairs", "zz12345"):
            if code and code != lead and code not in item.assists and code in self.alternatives:
                return code
        raise ValueError(f"no unit to re-dispatch {item.number} to")

    def _staff(self) -> str:
        return f"desk-{self.rng.randint(1, 40):02d}"

    def _supervisor(self) -> str:
        return f"office-{self.rng.randint(1, 6)}"

    def first_step(self, item: Item) -> EventRecord:
        """What intake staff do at once: answer, screen out, merge, or dispatch."""
        rng = self.rng
        if item.kind == "invalid":
            reason = rng.choice(["无实质诉求内容", "信息不全且无法联系来电人", "非本市事项"])
            return EventRecord(item.at + rng.randint(1, 4) * MINUTE, Action.SCREEN_OUT, ActorKind.STAFF,
                               self._staff(), {"reason": reason})
        if item.kind == "merged":
            return EventRecord(item.at + rng.randint(3, 30) * MINUTE, Action.MERGE, ActorKind.STAFF, self._staff(),
                               {"master": item.master})
        if not item.handed:
            topic = self.names.get(item.sub or "", "相关")
            return EventRecord(item.at + rng.randint(1, 6) * MINUTE, Action.ANSWER, ActorKind.STAFF, self._staff(),
                               {"text": f"依据知识库答复：{topic}"})
        payload = {"unit": item.lead} | ({"assist": list(item.assists)} if item.assists else {})
        return EventRecord(item.at + rng.randint(2, 30) * MINUTE, Action.DISPATCH, ActorKind.STAFF, self._staff(),
                           payload)

    def handle(self, item: Item, *, speed: float = 1.0, stuck_until: datetime | None = None) -> None:
        """Steps from dispatch to the approved reply; `speed` below 1 hurries, `stuck_until` holds the reply back."""
        rng, t = self.rng, self.traits
        dispatch = self.first_step(item)
        steps = [dispatch]
        lead, handed_at = item.lead, dispatch.at
        late = lead in t.late and rng.random() < t.late_share
        at = dispatch.at
        if lead in t.buck_passers and rng.random() < t.return_share:
            at = self._after(item, at, "sign_for", rng.uniform(0.1, 0.5) * speed)
            on_site = any(category_matches(prefix, item.sub) for prefix in self.on_site)
            bare = on_site and rng.random() < 0.6
            request = {"reason": "该事项不属于本单位职责"}
            if not bare:
                request |= {"suggested_unit": self._alternative(item, lead),
                            "evidence_note": "已到现场核实，非本单位设施"}
            steps.append(EventRecord(at, Action.REQUEST_RETURN, ActorKind.UNIT, lead, request))
            if bare:
                steps.append(EventRecord(at, Action.REJECT_RETURN, ActorKind.SYSTEM, "system",
                                         {"reason": ON_SITE_REJECTION, "automatic": True}))
            else:
                at = self._after(item, at, "return_decision", rng.uniform(0.1, 0.6) * speed)
                if rng.random() < 0.5:
                    lead = self._alternative(item, lead)
                    handed_at = at
                    steps.append(EventRecord(at, Action.APPROVE_RETURN, ActorKind.SUPERVISOR, self._supervisor(),
                                             {"unit": lead, "reason": "职责调整，改派"}))
                else:
                    steps.append(EventRecord(at, Action.REJECT_RETURN, ActorKind.SUPERVISOR, self._supervisor(),
                                             {"reason": "属于本单位职责，请按时办理"}))
        sign_share = rng.uniform(1.2, 3.0) if late and rng.random() < 0.3 else rng.uniform(0.05, 0.6) * speed
        at = max(at, self._after(item, handed_at, "sign_for", sign_share))
        steps.append(EventRecord(at, Action.SIGN, ActorKind.UNIT, lead, {}))
        reply_share = rng.uniform(1.05, 1.9) if late else rng.uniform(0.1, 0.7) * speed
        at = max(at + 10 * MINUTE, self._after(item, handed_at, "handling", reply_share))
        if stuck_until is not None:
            at = max(at, stuck_until + timedelta(hours=rng.uniform(2, 240)))
        steps.append(self._reply(item, at, lead))
        review = self.policy.stages_for(item.item_type).review
        if review == "human" and rng.random() < t.send_back_share:
            at = self._after(item, at, "review", rng.uniform(0.05, 0.5) * speed)
            steps.append(EventRecord(at, Action.SEND_BACK, ActorKind.SUPERVISOR, self._supervisor(),
                                     {"reason": "答复未回应来电人的具体诉求，请补充办理"}))
            at = max(at + 10 * MINUTE, self._after(item, at, "handling", rng.uniform(0.05, 0.3) * speed))
            steps.append(self._reply(item, at, lead))
        if review == "human":
            at = self._after(item, at, "review", rng.uniform(0.05, 0.5) * speed)
            steps.append(EventRecord(at, Action.APPROVE_REPLY, ActorKind.SUPERVISOR, self._supervisor(), {}))
        else:
            at = at + MINUTE
            steps.append(EventRecord(at, Action.APPROVE_REPLY, ActorKind.SYSTEM, "system", {"automatic": True}))
        item.steps, item.approved_at, item.final_lead = steps, at, lead

    def _reply(self, item: Item, at: datetime, lead: str) -> EventRecord:
        topic = self.names.get(item.sub or "", "来电人反映的问题")
        if item.item_type == "suggestion":
            payload = {"text": f"已研究来电人关于{topic}的建议并答复", "contacted": True,
                       "adopted": bool(item.adopted)}
        else:
            payload = {"text": f"已核实处理：{topic}，并与来电人沟通", "contacted": True, "solved": True}
        return EventRecord(at, Action.REPLY, ActorKind.UNIT, lead, payload)

    def close(self, item: Item, *, visit: str | None) -> None:
        """The return visit (satisfied, basically, or unsatisfied with a redo cycle) or the quiet close."""
        rng = self.rng
        at = item.approved_at
        if visit is None:
            item.steps.append(EventRecord(at + MINUTE, Action.CLOSE, ActorKind.SYSTEM, "system", {}))
            return
        at = self._after(item, at, "return_visit", rng.uniform(0.05, 0.6))
        if visit == "unsatisfied":
            item.steps.append(EventRecord(at, Action.REDO, ActorKind.STAFF, self._staff(), {
                "satisfaction": "unsatisfied", "comment": "来电人称无人联系，问题仍未解决"}))
            at = self._after(item, at, "handling", rng.uniform(0.1, 0.5))
            item.steps.append(self._reply(item, at, item.final_lead))
            review = self.policy.stages_for(item.item_type).review
            at = self._after(item, at, "review", rng.uniform(0.05, 0.5)) if review == "human" else at + MINUTE
            item.steps.append(EventRecord(at, Action.APPROVE_REPLY, *(
                (ActorKind.SUPERVISOR, self._supervisor(), {}) if review == "human"
                else (ActorKind.SYSTEM, "system", {"automatic": True}))))
            at = self._after(item, at, "return_visit", rng.uniform(0.05, 0.6))
            visit = "satisfied"
        item.steps.append(EventRecord(at, Action.CLOSE, ActorKind.STAFF, self._staff(), {
            "satisfaction": visit, "contacted": True, "resolved": True}))

    def close_at(self, item: Item, *, visit: bool) -> datetime:
        """When the order would close (without drawing from the random stream)."""
        if not visit:
            return item.approved_at + MINUTE
        limit = self.policy.time_limit("return_visit", item_type=item.item_type, urgency=item.urgency,
                                       category=item.sub)
        return add_working_time(item.approved_at, Amount(limit.value * 0.6, limit.unit), self.calendar)
