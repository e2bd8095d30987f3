"""Stable codes of the domain, with their Chinese and English labels in one mapping."""

from enum import StrEnum


class Status(StrEnum):
    RECEIVED = "received"
    INVALID = "invalid"
    MERGED = "merged"
    ANSWERED = "answered"
    DISPATCHED = "dispatched"
    RETURN_REQUESTED = "return_requested"
    HANDLING = "handling"
    REPLIED = "replied"
    VISITING = "visiting"
    CLOSED = "closed"


FINAL_STATUSES = frozenset({Status.INVALID, Status.MERGED, Status.ANSWERED, Status.CLOSED})
# Statuses in which a unit holds the order; the lifecycle flow runs while an order is in one of these.
OPEN_DISPATCHED = frozenset(
    {Status.DISPATCHED, Status.RETURN_REQUESTED, Status.HANDLING, Status.REPLIED, Status.VISITING}
)


class Channel(StrEnum):
    HOTLINE = "hotline"
    MAYOR_MAILBOX = "mayor_mailbox"
    WEIBO = "weibo"
    WECHAT = "wechat"
    ONLINE_POST = "online_post"
    POLICE_110 = "police_110"
    COUNTY_PLATFORM = "county_platform"
    OPEN311 = "open311"


class ItemType(StrEnum):
    CONSULTATION = "consultation"
    HELP_REQUEST = "help_request"
    COMPLAINT = "complaint"
    REPORT = "report"
    SUGGESTION = "suggestion"
    PRAISE = "praise"


class Urgency(StrEnum):
    NORMAL = "normal"
    URGENT = "urgent"
    VERY_URGENT = "very_urgent"


class ActorKind(StrEnum):
    SYSTEM = "system"
    STAFF = "staff"  # hotline staff: intake, return visits
    SUPERVISOR = "supervisor"
    UNIT = "unit"
    CHANNEL = "channel"


class AssignmentRole(StrEnum):
    LEAD = "lead"
    ASSIST = "assist"


class Decision(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    AUTO_REJECTED = "auto_rejected"


class Satisfaction(StrEnum):
    SATISFIED = "satisfied"
    BASICALLY = "basically"
    UNSATISFIED = "unsatisfied"


class CaseKind(StrEnum):
    OVERDUE = "overdue"
    SIGN_LIMBO = "sign_limbo"
    BUCK_PASSING = "buck_passing"
    REDO = "redo"
    FALSE_COMPLETION = "false_completion"
    REPEAT_COMPLAINT = "repeat_complaint"
    KB_STALE = "kb_stale"
    DECISION_OVERDUE = "decision_overdue"


class CaseStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class SendState(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


class UnitKind(StrEnum):
    BUREAU = "bureau"
    DISTRICT = "district"
    COUNTY = "county"
    ENTERPRISE = "enterprise"
    PLATFORM = "platform"


LABELS: dict[StrEnum, tuple[str, str]] = {
    Status.RECEIVED: ("已受理", "received"),
    Status.INVALID: ("无效", "invalid"),
    Status.MERGED: ("已合并", "merged"),
    Status.ANSWERED: ("直接答复", "answered directly"),
    Status.DISPATCHED: ("已派单", "dispatched"),
    Status.RETURN_REQUESTED: ("申请退单", "return requested"),
    Status.HANDLING: ("办理中", "handling"),
    Status.REPLIED: ("已回复", "replied"),
    Status.VISITING: ("回访中", "return visit"),
    Status.CLOSED: ("已办结", "closed"),
    Channel.HOTLINE: ("热线电话", "hotline"),
    Channel.MAYOR_MAILBOX: ("市长信箱", "mayor mailbox"),
    Channel.WEIBO: ("微博", "Weibo"),
    Channel.WECHAT: ("微信", "WeChat"),
    Channel.ONLINE_POST: ("网络留言", "online post"),
    Channel.POLICE_110: ("110转接", "110 forwarding"),
    Channel.COUNTY_PLATFORM: ("县市区平台", "county platform"),
    Channel.OPEN311: ("Open311", "Open311"),
    ItemType.CONSULTATION: ("咨询", "consultation"),
    ItemType.HELP_REQUEST: ("求助", "help request"),
    ItemType.COMPLAINT: ("投诉", "complaint"),
    ItemType.REPORT: ("举报", "report"),
    ItemType.SUGGESTION: ("建议", "suggestion"),
    ItemType.PRAISE: ("表扬", "praise"),
    Urgency.NORMAL: ("一般", "normal"),
    Urgency.URGENT: ("紧急", "urgent"),
    Urgency.VERY_URGENT: ("特急", "very urgent"),
    AssignmentRole.LEAD: ("主办", "lead"),
    AssignmentRole.ASSIST: ("协办", "assisting"),
    Satisfaction.SATISFIED: ("满意", "satisfied"),
    Satisfaction.BASICALLY: ("基本满意", "basically satisfied"),
    Satisfaction.UNSATISFIED: ("不满意", "not satisfied"),
    CaseKind.OVERDUE: ("超期督办", "overdue"),
    CaseKind.SIGN_LIMBO: ("逾期未签收", "not signed for"),
    CaseKind.BUCK_PASSING: ("推诿扯皮", "buck-passing"),
    CaseKind.REDO: ("多次重办", "repeated redo"),
    CaseKind.FALSE_COMPLETION: ("虚假办结", "suspected false completion"),
    CaseKind.REPEAT_COMPLAINT: ("重复投诉", "repeat complaint"),
    CaseKind.KB_STALE: ("知识库未更新", "stale knowledge base"),
    CaseKind.DECISION_OVERDUE: ("审核超时", "decision overdue"),
}


def label(code: StrEnum, lang: str = "zh") -> str:
    """The display label of a code in Chinese (default) or English."""
    zh, en = LABELS.get(code, (str(code), str(code)))
    return zh if lang == "zh" else en
