"""Request and response bodies of the intake API and of Open311 GeoReport v2, as the OpenAPI description shows them."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from tasks.intake_item import IntakeItem


class ItemRequest(IntakeItem):
    """An item submitted by a channel; refused whole, with every wrong field named, if anything is invalid."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "content": "芦淞区建宁街道某小区楼下烧烤店油烟很大，每晚熏得开不了窗",
        "item_type": "complaint",
        "category": "city_appearance_life_services.cooking_fumes",
        "district": "lusong.jianning",
        "address": "芦淞区建宁街道建宁路88号",
        "citizen_name": "张三",
        "citizen_phone": "13812345678",
        "channel_ref": "WB-20210315-0001",
    }]})


class Receipt(BaseModel):
    """The order number the item was registered under; `created` is false for a resubmission."""

    number: str = Field(examples=["ZZ20210315-000123"])
    status: str = Field(description="Duban's status code, e.g. received")
    status_label: str = Field(description="the status in Chinese")
    received_at: datetime
    created: bool
    status_url: str = Field(description="where anyone may read the item's public status")


class Problem(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ValidationProblems(BaseModel):
    """What was wrong with a refused item: one entry per field."""

    detail: list[Problem]


class Message(BaseModel):
    """An error that is not about one field (missing or revoked key, body too large, unknown number)."""

    detail: str


class PublicEvent(BaseModel):
    at: datetime
    event: str = Field(description="what happened, e.g. work_order_dispatched")
    status: str | None
    status_label: str


class PublicStatus(BaseModel):
    """An item's status and history; it carries no content, address or anything about the citizen."""

    number: str
    status: str
    status_label: str
    status_label_en: str
    final: bool
    item_type: str
    category: str | None
    district: str | None
    received_at: datetime
    closed_at: datetime | None
    unit: str | None = Field(description="the lead unit handling it, once dispatched")
    answer_article: str | None = Field(description="the knowledge-base article it was answered from")
    merged_into: str | None = Field(description="the master order it was merged under")
    history: list[PublicEvent]


class Open311Error(BaseModel):
    code: int
    description: str


class Open311Service(BaseModel):
    service_code: str
    service_name: str
    description: str
    metadata: bool
    type: Literal["realtime", "batch", "blackbox"]
    keywords: str
    group: str


class Open311AttributeValue(BaseModel):
    key: str
    name: str


class Open311Attribute(BaseModel):
    variable: bool
    code: str
    datatype: Literal["string", "number", "datetime", "text", "singlevaluelist", "multivaluelist"]
    required: bool
    datatype_description: str
    order: int
    description: str
    values: list[Open311AttributeValue]


class Open311ServiceDefinition(BaseModel):
    service_code: str
    attributes: list[Open311Attribute]


class Open311Created(BaseModel):
    service_request_id: str
    token: str | None
    service_notice: str
    account_id: str | None


class Open311Token(BaseModel):
    service_request_id: str
    token: str


class Open311Request(BaseModel):
    service_request_id: str
    status: Literal["open", "closed"]
    status_notes: str
    service_name: str
    service_code: str
    description: str
    agency_responsible: str
    service_notice: str
    requested_datetime: str
    updated_datetime: str
    expected_datetime: str | None
    address: str
    address_id: str
    zipcode: str
    lat: float | None
    long: float | None
    media_url: str
    extended_attributes: dict[str, str | None] | None = None


class Open311Endpoint(BaseModel):
    specification: str
    url: str
    changeset: str
    type: str
    formats: list[str]


class Open311Discovery(BaseModel):
    changeset: str
    contact: str
    key_service: str
    endpoints: list[Open311Endpoint]
