"""Duban's domain: ORM models, codes, the transition table, policy and the working calendar."""

from models.accounts import AuditEntry, GatewaySession, User
from models.base import Base
from models.directory import Category, District, Unit
from models.history import Call, PublishedTotals
from models.intake import HotSpotAlert, IntakeToken, KbGap, KbReminder, KbReview, MergeLink
from models.records import ActionToken, ChannelKey, Event, Notification, OrderCounter, PolicyVersion, RunCursor
from models.requests import ExtensionRequest, ReturnRequest, ReturnVisit, Review
from models.supervision import Article, SupervisionCase
from models.supervision_records import CaseDecision, CirculatedNotice, ClockJob, Escalation, SupervisionFlag
from models.work_order import Assignment, WorkOrder
from models.event_cursor import EventCursor  # noqa: F401

__all__ = [
    "ActionToken", "Article", "Assignment", "Base", "Category", "ChannelKey", "District", "Event",
    "ExtensionRequest", "Notification", "OrderCounter", "PolicyVersion", "ReturnRequest", "ReturnVisit", "Review", "RunCursor",
    "SupervisionCase", "Unit", "WorkOrder",
    "CaseDecision", "CirculatedNotice", "ClockJob", "Escalation", "SupervisionFlag",
    "HotSpotAlert", "IntakeToken", "KbGap", "KbReminder", "KbReview", "MergeLink",
    "Call", "PublishedTotals",
    "AuditEntry", "GatewaySession", "User",
]
