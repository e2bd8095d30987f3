"""Duban's domain: ORM models, codes, the transition table, policy and the working calendar."""

from models.base import Base
from models.directory import Category, District, Unit
from models.records import ActionToken, ChannelKey, Event, Notification, OrderCounter, PolicyVersion
from models.requests import ExtensionRequest, ReturnRequest, ReturnVisit, Review
from models.supervision import Article, SupervisionCase
from models.work_order import Assignment, WorkOrder

__all__ = [
    "ActionToken", "Article", "Assignment", "Base", "Category", "ChannelKey", "District", "Event",
    "ExtensionRequest", "Notification", "OrderCounter", "PolicyVersion", "ReturnRequest", "ReturnVisit", "Review",
    "SupervisionCase", "Unit", "WorkOrder",
]
