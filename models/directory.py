"""The city's directory: districts and streets, the category taxonomy, undertaking units."""

from typing import Any

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, code_column, enum_check
from models.enums import UnitKind


class District(Base):
    """A district or county, or a street (街道) inside one."""

    __tablename__ = "districts"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name_zh: Mapped[str] = mapped_column(String(100))
    name_en: Mapped[str] = mapped_column(String(100), default="")
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("districts.id"), index=True)


class Category(Base):
    """A node of the category taxonomy; codes are dotted paths (``urban.manhole_covers``)."""

    __tablename__ = "categories"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(128), unique=True)
    name_zh: Mapped[str] = mapped_column(String(100))
    name_en: Mapped[str] = mapped_column(String(200), default="")
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("categories.id"), index=True)
    keywords: Mapped[list[Any]] = mapped_column(default=list)

    @property
    def top_code(self) -> str:
        return self.code.split(".", 1)[0]


class Unit(Base):
    """An undertaking unit (承办单位): a bureau, a district government, a utility, a county platform."""

    __tablename__ = "units"
    __table_args__ = (enum_check("kind", UnitKind),)

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name_zh: Mapped[str] = mapped_column(String(100))
    name_en: Mapped[str] = mapped_column(String(200), default="")
    kind: Mapped[str] = mapped_column(code_column(UnitKind))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"), index=True)
    district_id: Mapped[int | None] = mapped_column(ForeignKey("districts.id"))
    email: Mapped[str] = mapped_column(String(254))
    leader_name: Mapped[str] = mapped_column(String(100), default="")
    leader_email: Mapped[str] = mapped_column(String(254), default="")
    leader_phone: Mapped[str] = mapped_column(String(40), default="")
    active: Mapped[bool] = mapped_column(default=True)
