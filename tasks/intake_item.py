"""What a channel may submit: every field of an intake item checked, with a message naming the field."""

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from duban.errors import ValidationFailed
from models.enums import ItemType, Urgency

CONTENT_MAX = 4000  # the GeoReport v2 limit for a description, used for every channel
REF_MAX = 60  # stored as "<channel name>:<ref>" in a 128-character column
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")
_SEPARATORS = re.compile(r"[\s\-()（）]")
_MOBILE = re.compile(r"1[3-9]\d{9}")
_LANDLINE = re.compile(r"0\d{9,11}")
_EMAIL = re.compile(r"[^@\s]{1,64}@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+")
_CODE = re.compile(r"[a-z0-9_]+(\.[a-z0-9_]+)*")
_REF = re.compile(r"[A-Za-z0-9._:/#-]+")
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
CLOCK_SKEW = timedelta(minutes=5)


def _fail(kind: str, message: str, **context: Any) -> PydanticCustomError:
    return PydanticCustomError(kind, message, context)


def _text(value: str) -> str:
    bad = _CONTROL.search(value)
    if bad:
        raise _fail("text_control", "contains the control character U+{code}; send plain text",
                    code=f"{ord(bad.group()):04X}")
    return value


def _required_text(value: str) -> str:
    if not value:
        raise _fail("text_empty", "is empty; describe the matter in a few words")
    return _text(value)


def normalize_phone(value: str) -> str:
    """A Chinese mobile (13812345678) or landline with area code (073122334455); separators and +86 removed."""
    digits = _SEPARATORS.sub("", value)
    for prefix in ("+86", "0086"):
        digits = digits.removeprefix(prefix)
    if digits.startswith("86") and _MOBILE.fullmatch(digits[2:]):
        digits = digits[2:]
    if _MOBILE.fullmatch(digits) or _LANDLINE.fullmatch(digits):
        return digits
    raise _fail("phone_invalid", "'{value}' is not a phone number; write a mobile number such as 13812345678 "
                "or a landline with its area code such as 0731-22334455", value=value[:40])


def _phone(value: str) -> str:
    return normalize_phone(value) if value else ""


def _email(value: str) -> str:
    if value and not _EMAIL.fullmatch(value):
        raise _fail("email_invalid", "'{value}' is not an email address; write e.g. name@example.com",
                    value=value[:60])
    return value


def _code(value: str | None) -> str | None:
    if value is not None and not _CODE.fullmatch(value):
        raise _fail("code_invalid", "'{value}' is not a directory code; use lowercase letters, digits and "
                    "underscores, dotted for a subcategory (e.g. city_appearance_life_services.noise)",
                    value=value[:60])
    return value


def _ref(value: str | None) -> str | None:
    if value is not None and not _REF.fullmatch(value):
        raise _fail("ref_invalid", "may hold only letters, digits and . _ : / # -")
    return value


def _moment(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise _fail("datetime_naive", "has no time zone; write e.g. 2021-03-15T09:00:00+08:00")
    value = value.astimezone(UTC)
    if value < EARLIEST:
        raise _fail("datetime_early", "is before 2000; check the date")
    if value > datetime.now(UTC) + CLOCK_SKEW:
        raise _fail("datetime_future", "is in the future; send the time the item was received")
    return value


Text = Annotated[str, AfterValidator(_text)]
Phone = Annotated[str, Field(max_length=40), AfterValidator(_phone)]
Email = Annotated[str, Field(max_length=254), AfterValidator(_email)]


class IntakeItem(BaseModel):
    """One item (诉求) as a channel submits it; the channel itself is known from its API key."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)

    content: Annotated[str, Field(max_length=CONTENT_MAX, description="what the citizen asks or reports"),
                       AfterValidator(_required_text)]
    item_type: ItemType = Field(description="consultation, help_request, complaint, report, suggestion or praise")
    urgency: Urgency = Field(default=Urgency.NORMAL, description="normal, urgent or very_urgent")
    title: Annotated[Text, Field(max_length=200)] = ""
    category: Annotated[str | None, Field(max_length=128, description="category code from the directory"),
                        AfterValidator(_code)] = None
    district: Annotated[str | None, Field(max_length=64, description="district or street code from the directory"),
                        AfterValidator(_code)] = None
    address: Annotated[Text, Field(max_length=300, description="where the matter is")] = ""
    citizen_name: Annotated[Text, Field(max_length=100)] = ""
    citizen_phone: Phone = ""
    citizen_email: Email = ""
    confidential: bool = Field(default=False, description="the citizen asked that their name not be passed on")
    channel_ref: Annotated[str | None, Field(min_length=1, max_length=REF_MAX,
                                             description="the channel's own id; resubmitting it returns the same item"),
                           AfterValidator(_ref)] = None
    received_at: Annotated[datetime | None, Field(description="when the channel received it (with time zone)"),
                           AfterValidator(_moment)] = None
    lat: float | None = Field(default=None, ge=-90, le=90, description="WGS-84 latitude")
    long: float | None = Field(default=None, ge=-180, le=180, description="WGS-84 longitude")

    @model_validator(mode="after")
    def _both_coordinates(self) -> "IntakeItem":
        if (self.lat is None) != (self.long is None):
            raise _fail("coordinates_half", "lat and long go together; send both or neither")
        return self


class ItemInvalid(ValidationFailed):
    """An item refused whole; `problems` names each field and what was wrong with it."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("item refused: " + "; ".join(f"{field}: {message}" for field, message in problems))


def field_name(loc: tuple[Any, ...]) -> str:
    """A pydantic location as a dotted field name; a whole-item problem is named `item`."""
    return ".".join(str(part) for part in loc) or "item"


def parse_item(data: Any) -> IntakeItem:
    """Validate raw input (a JSON object, a CSV row) into an item, or raise ItemInvalid."""
    if not isinstance(data, dict):
        raise ItemInvalid([("item", f"expected an object with named fields, got {type(data).__name__}")])
    try:
        return IntakeItem.model_validate(data)
    except ValidationError as exc:
        raise ItemInvalid([(field_name(error["loc"]), error["msg"]) for error in exc.errors()]) from None
