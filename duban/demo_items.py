"""The demo's simulated items: from every channel, each with its own place and words, as citizens write them."""

import random
from collections import Counter

from sqlalchemy import select

from duban.db import session_scope
from models.directory import Category, District, Unit
from models.enums import Channel, ItemType
from tasks.orders import create_order

CHANNEL_MIX = [(Channel.HOTLINE, 60), (Channel.MAYOR_MAILBOX, 6), (Channel.WEIBO, 5), (Channel.WECHAT, 10),
               (Channel.ONLINE_POST, 9), (Channel.POLICE_110, 3), (Channel.COUNTY_PLATFORM, 7)]
TYPE_MIX = [(ItemType.COMPLAINT, 40), (ItemType.HELP_REQUEST, 25), (ItemType.REPORT, 10),
            (ItemType.CONSULTATION, 15), (ItemType.SUGGESTION, 7), (ItemType.PRAISE, 3)]


def _pick(rng: random.Random, mix: list[tuple[object, int]]):
    return rng.choices([v for v, _ in mix], weights=[w for _, w in mix])[0]


ROADS = ("建设路", "红旗路", "长江北路", "新华西路", "车站路", "人民中路", "天元大道", "珠江南路", "湘江北路",
         "神农大道", "黄河北路", "泰山路", "庐山路", "桂花路", "湖南路", "株洲大道", "栗雨路", "响石路")
PLACES = ("小区", "家园", "花园", "公寓", "新村", "市场", "学校门口", "公交站", "路口", "菜市场")
WHEN = ("每天晚上", "连续一周", "近三天", "今天上午", "周末", "凌晨时段", "本月以来", "多次")
ASKS = ("请尽快核实处理。", "希望相关部门到现场查看。", "请给予答复。", "已影响正常生活，请督促解决。",
        "此前反映过一次，至今未解决。", "请明确责任单位。")
SURNAMES = "张王李刘陈杨黄赵吴周徐孙马朱胡郭何林罗高"
GIVEN = ("建国", "秀英", "伟", "芳", "志强", "丽华", "海燕", "军", "桂兰", "明", "小红", "德华", "玉梅", "勇", "静")


def feed(rng: random.Random, count: int, fed: Counter) -> None:
    """Register `count` items from every channel, each with its own place and words, as citizens write them.

    About one in twenty repeats an earlier item of the run (another caller about the same matter), so
    the intake's duplicate merge has something to find without swallowing the stream.
    """
    with session_scope() as session:
        leaves = session.execute(select(Category.code, Category.name_zh, Category.keywords)
                                 .where(Category.parent_id.is_not(None))).all()
        streets = session.execute(select(District.code, District.name_zh, District.parent_id)
                                  .where(District.parent_id.is_not(None))).all()
        parents = dict(session.execute(select(District.id, District.code).where(District.parent_id.is_(None))).all())
        officials = set(session.scalars(select(Unit.leader_name)))  # a citizen never shares a leader's name
        earlier: list[dict] = []
        for _ in range(count):
            channel, item_type = _pick(rng, CHANNEL_MIX), _pick(rng, TYPE_MIX)
            if earlier and rng.random() < 0.05:
                item = dict(rng.choice(earlier))
            else:
                item = _item(rng, rng.choice(leaves), rng.choice(streets), parents)
                earlier.append(item)
            name = rng.choice(SURNAMES) + rng.choice(GIVEN)
            while name in officials:
                name = rng.choice(SURNAMES) + rng.choice(GIVEN)
            create_order(session=session, channel=channel, item_type=item_type, **item, citizen_name=name,
                         citizen_phone=f"1{rng.choice('3578')}{rng.randint(100000000, 999999999)}",
                         confidential=rng.random() < 0.05)
            fed[channel] += 1


def _item(rng: random.Random, leaf, street, parents: dict[int, str]) -> dict:
    code, name, keywords = leaf
    _, street_name, parent_id = street
    word = rng.choice(keywords) if keywords else name
    place = f"{rng.choice(ROADS)}{rng.randint(1, 400)}号{rng.choice(PLACES)}"
    detail = f"{rng.randint(1, 30)}栋{rng.randint(1, 6)}单元附近" if rng.random() < 0.5 else f"门前约{rng.randint(2, 200)}米处"
    content = (f"市民反映{street_name}{place}{detail}{rng.choice(WHEN)}存在{word}问题（{name}）。"
               f"{rng.choice(ASKS)}")
    return {"category_code": code, "district_code": parents[parent_id], "title": f"{name}：{word}",
            "content": content, "address": f"{street_name}{place}"}
