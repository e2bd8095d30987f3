"""Helpers for the intake, Open311, triage and knowledge-base tests."""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from duban.db import get_engine, reset_engines, session_scope
from models.directory import Category, District, Unit
from models.work_order import WorkOrder
from portal.app import create_app
from tasks.channels import ChannelIdentity, add_channel
from tasks.classify import forget_classifier
from tasks.directory import load_directory
from tasks.kb import ensure_search_index, import_articles
from tasks.orders import create_order
from tasks.policy_store import forget_policies

ROOT = Path(__file__).resolve().parent.parent
ITEM: dict[str, Any] = {
    "content": "芦淞区建宁街道某小区楼下烧烤店油烟很大，每晚熏得开不了窗",
    "item_type": "complaint",
    "category": "city_appearance_life_services.cooking_fumes",
    "district": "lusong.jianning",
    "address": "芦淞区建宁路88号",
    "citizen_name": "张三",
    "citizen_phone": "13812345678",
    "citizen_email": "zhangsan@example.com",
}
ARTICLES = [
    {"code": "KB-HR-001", "title": "社保卡丢失后的挂失和补办", "owner_unit": "hrss",
     "category": "hr_social_security.social_security_card", "keywords": ["社保卡", "挂失", "补办", "补卡"],
     "body": "社保卡丢失后，可拨打12333或到银行网点办理临时挂失，再携带身份证到社保服务大厅或合作银行补办，"
             "补卡工本费20元，一般5个工作日内领取新卡。"},
    {"code": "KB-HR-002", "title": "社保卡金融功能激活", "owner_unit": "hrss",
     "category": "hr_social_security.social_security_card", "keywords": ["社保卡", "激活", "金融功能"],
     "body": "新领的社保卡需持卡本人携带身份证到发卡银行网点激活金融功能，激活后可存取款。"},
    {"code": "KB-GAS-001", "title": "管道燃气开户办理流程", "owner_unit": "gas_company",
     "category": "urban_rural_planning_construction.gas_supply", "keywords": ["燃气", "开户", "天然气"],
     "body": "新房燃气开户请携带房产证明和身份证到燃气公司营业厅申请，工作人员3个工作日内上门安装燃气表并通气。"},
    {"code": "KB-HF-001", "title": "住房公积金提取条件", "owner_unit": "housing_fund",
     "category": "housing_land.housing_fund", "keywords": ["公积金", "提取", "离职"],
     "body": "购房、租房、离职满半年、退休等情形可申请提取住房公积金，可在线上服务平台办理。"},
]


@contextmanager
def shared_directory(backend: str, folder: Path) -> Iterator[str]:
    """A database with the demo directory for a whole module of read-mostly tests (the fixtures' way, once)."""
    from tests.conftest import _empty, _worker_pg_url

    url = f"sqlite:///{folder / 'shared.db'}" if backend == "sqlite" else _worker_pg_url()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DUBAN_DATABASE_URL", url)
        reset_engines()
        forget_policies()
        _empty(get_engine(url))
        with session_scope() as session:
            load_directory(session=session, path=ROOT / "duban" / "data" / "directory.yaml")
        search_ready(url)
        try:
            yield url
        finally:
            reset_engines()
            forget_policies()


def client() -> TestClient:
    """The portal application, served in process."""
    return TestClient(create_app())


def channel(name: str, kind: str | None = None) -> tuple[ChannelIdentity, str]:
    """A fresh channel and its key."""
    with session_scope() as session:
        return add_channel(session=session, name=name, channel=kind)


def search_ready(db_url: str) -> None:
    """The article search index, as `duban init` creates it; the trained classifier forgotten."""
    ensure_search_index(get_engine(db_url))
    forget_classifier()


def load_articles(tmp_path: Path, at: datetime, review_by: date | None = None) -> None:
    """The sample articles, imported the way an admin does."""
    import yaml

    records = [{**a, "review_by": (review_by or (at + timedelta(days=90)).date()).isoformat()} for a in ARTICLES]
    path = tmp_path / "articles.yaml"
    path.write_text(yaml.safe_dump({"articles": records}, allow_unicode=True), encoding="utf-8")
    with session_scope() as session:
        import_articles(session=session, path=path, at=at)


def new_item(*, content: str, at: datetime, item_type: str = "complaint", category: str | None = None,
             district: str | None = None, address: str = "", email: str = "", channel: str = "hotline",
             **fields: Any) -> int:
    """A received order straight from the service layer; returns its id."""
    with session_scope() as session:
        order = create_order(session=session, channel=channel, item_type=item_type, content=content,
                             category_code=category, district_code=district, at=at, address=address,
                             citizen_email=email, citizen_phone="13912345678", citizen_name="李四", **fields)
        return order.id


def order(order_id: int) -> WorkOrder:
    """An order as stored now, readable after its session closed."""
    with session_scope() as session:
        return session.get(WorkOrder, order_id)


def code_id(model: type[Category] | type[District] | type[Unit], code: str) -> int:
    with session_scope(readonly=True) as session:
        return session.scalar(select(model.id).where(model.code == code))
