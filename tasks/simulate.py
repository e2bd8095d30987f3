"""`duban simulate year`: a year of calls, valid items and their histories whose totals follow a profile.

Every total the profile publishes is met exactly (largest-remainder shares, then shuffled), so a
report of the replayed year lands on the published figures; what is random is who, where, when:
daily and weekly rhythms, the Chinese holidays, office hours, and a few units that pass the buck,
run late or close falsely, so supervision has something to find.
"""

import bisect
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

import chinese_calendar

from duban.errors import ValidationFailed
from duban.settings import get_settings
from models.policy import Policy, load_policy
from tasks.directory import read_directory
from tasks.history_format import LOCAL, VERSION, CallRecord, Header, OrderRecord, TotalsRecord, dump_line
from tasks.simulate_lifecycle import TYPE_ZH, Item, Lives, Traits
from tasks.simulate_profile import SUBTOPIC_WEIGHTS, Profile, apportion

DEMO_DIRECTORY = Path(__file__).resolve().parent.parent / "duban" / "data" / "directory.yaml"
MONTH_FACTOR = {1: 1.08, 2: 0.86, 3: 0.98, 4: 0.97, 5: 0.98, 6: 1.0, 7: 1.02, 8: 1.15, 9: 1.0, 10: 0.93, 11: 0.98,
                12: 1.05}
# Calls per local hour: a 24-hour hotline, busiest mid-morning and mid-afternoon.
HOUR_WEIGHTS = [0.12, 0.08, 0.06, 0.05, 0.06, 0.1, 0.25, 0.6, 1.4, 1.9, 2.0, 1.8, 1.0, 1.0, 1.6, 1.8, 1.7, 1.2,
                0.9, 0.8, 0.7, 0.5, 0.3, 0.2]
COUNTIES = {"liling": 0.35, "you_county": 0.25, "chaling": 0.2, "yanling": 0.2}
URBAN = {"tianyuan": 0.24, "lusong": 0.22, "hetang": 0.22, "shifeng": 0.2, "lukou": 0.12}
OTHER_CALL_CHANNELS = {"hotline": 0.92, "wechat": 0.04, "online_post": 0.02, "weibo": 0.01, "mayor_mailbox": 0.01}
VISIT_WEIGHT = {"complaint": 3.0, "report": 1.5, "help_request": 1.5, "suggestion": 0.6, "consultation": 0.3,
                "praise": 0.05}


@dataclass
class SimulationSummary:
    """What was generated."""

    path: Path
    calls: int = 0
    orders: int = 0
    valid_items: int = 0
    handed_to_units: int = 0
    open_at_year_end: int = 0
    return_visits: int = 0
    actions: int = 0
    units: dict[str, list[str]] = field(default_factory=dict)


def simulate_year(*, profile: Profile, seed: int, out: Path, directory: Path = DEMO_DIRECTORY,
                  policy: Policy | None = None, progress: Callable[[int], None] | None = None) -> SimulationSummary:
    """Generate the profile's year into `out` (the history format, canonical lines); same seed, same file."""
    rng = random.Random(seed)
    policy = policy or load_policy(get_settings().policy_file)
    data = read_directory(directory)
    days = _day_weights(profile.year, rng)
    items = _orders(profile, rng, data, days)
    handed = [i for i in items if i.handed]
    traits = _traits(profile, rng, policy, data, handed)
    names = {c["code"]: c["name_zh"] for c in data["categories"]}
    lives = Lives(policy, rng, traits, names, _alternatives(data))
    end = datetime(profile.year + 1, 1, 1, tzinfo=LOCAL)
    for item in items:
        if item.handed:
            lives.handle(item)
        else:
            item.steps = [lives.first_step(item)]
    open_ = _settle_year_end(profile, lives, handed, end)
    visits = _visits(profile, rng, lives, handed, open_, end, traits)
    for item in handed:
        lives.close(item, visit=visits.get(id(item)))
    calls = _calls(profile, rng, days, handed, get_settings().city_code)
    summary = SimulationSummary(path=out, calls=len(calls), orders=len(items), valid_items=profile.valid_items,
                                handed_to_units=len(handed), open_at_year_end=len(open_),
                                return_visits=sum(1 for i in handed for e in i.steps if "satisfaction" in e.payload),
                                units={"buck_passers": sorted(traits.buck_passers), "late": sorted(traits.late),
                                       "false_closers": sorted(traits.false_closers)})
    _write(out, profile, seed, calls, items, data, rng, summary, progress)
    return summary


def _day_weights(year: int, rng: random.Random) -> list[tuple[date, float]]:
    """Each day of the year with its share of the volume: weekdays, weekends, holidays, the season."""
    days = []
    d = date(year, 1, 1)
    while d.year == year:
        try:
            holiday, name = chinese_calendar.get_holiday_detail(d)
            workday = chinese_calendar.is_workday(d)
        except NotImplementedError:
            raise ValidationFailed(f"the installed chinese-calendar does not know {year}; "
                                   "simulate a year between 2004 and 2026") from None
        weight = 1.0 if workday else 0.45 if name == "Spring Festival" else 0.6 if holiday and name else 0.72
        days.append((d, weight * MONTH_FACTOR[d.month] * rng.uniform(0.95, 1.05)))
        d += timedelta(days=1)
    return days


def _times(days: list[tuple[date, float]], total: int, rng: random.Random) -> list[datetime]:
    """`total` moments over the days by their weights, by the hour of the day, in order."""
    out: list[datetime] = []
    for (day, _), count in zip(days, apportion(total, [w for _, w in days]), strict=True):
        start = datetime(day.year, day.month, day.day, tzinfo=LOCAL)
        hours = rng.choices(range(24), weights=HOUR_WEIGHTS, k=count)
        out += sorted(start + timedelta(hours=h, seconds=rng.randrange(3600)) for h in hours)
    return out


def _shuffled(counts: dict[str, int], rng: random.Random) -> list[str]:
    values = [k for k, n in counts.items() for _ in range(n)]
    rng.shuffle(values)
    return values


def _shares(total: int, shares: dict[str, float]) -> dict[str, int]:
    return dict(zip(shares, apportion(total, list(shares.values())), strict=True))


def _subtopics(profile: Profile, data: dict) -> list[tuple[str | None, int, int]]:
    """(subcategory, items, items handed to units): categories by rank, hot topics on top of the handed ranking."""
    children: dict[str, list[str]] = {}
    for c in data["categories"]:
        if c["parent"]:
            children.setdefault(c["parent"], []).append(c["code"])
    subs: list[tuple[str | None, int]] = []
    for code, count in profile.categories:
        kids = children.get(code) or [code]
        weights = SUBTOPIC_WEIGHTS.get(code) if len(SUBTOPIC_WEIGHTS.get(code, [])) == len(kids) else [1.0] * len(kids)
        subs += list(zip(kids, apportion(count, weights), strict=True))
    subs.append((None, profile.valid_items - sum(n for _, n in profile.categories)))
    hot = dict(profile.hot_topics)
    for code, handed in hot.items():
        items = dict(subs).get(code, 0)
        if handed > items:
            raise ValidationFailed(f"hot topic {code} would hand {handed} items to units but has only {items}")
    others = [(code, n) for code, n in subs if code not in hot]
    rest = profile.handed_to_units - sum(hot.values())
    propensity = [0.05 if code and code.startswith("hr_social_security") else 0.25 for code, _ in others]
    handed = apportion(rest, [n * p for (_, n), p in zip(others, propensity, strict=True)],
                       [min(n, profile.other_handed_cap) for _, n in others])
    others_handed = {code: h for (code, _), h in zip(others, handed, strict=True)}
    return [(code, n, hot.get(code, others_handed.get(code, 0))) for code, n in subs]


def _orders(profile: Profile, rng: random.Random, data: dict, days: list[tuple[date, float]]) -> list[Item]:
    """Every order of the year in time order: valid items, and those screened out or merged."""
    shape = profile.shape
    invalid, merged = shape["invalid_orders"], shape["merged_orders"]
    times = _times(days, profile.valid_items + invalid + merged, rng)
    kinds = _shuffled({"valid": profile.valid_items, "invalid": invalid, "merged": merged}, rng)
    topics = [(code, i < handed) for code, n, handed in _subtopics(profile, data) for i in range(n)]
    rng.shuffle(topics)
    channels = _shuffled(_shares(profile.valid_items, shape["channel_shares"]), rng)
    other_channels = _shuffled(_shares(invalid + merged, shape["channel_shares"]), rng)
    n_handed = profile.handed_to_units
    handed_types = _shuffled(_shares(n_handed, shape["handed_item_types"]), rng)
    answered_types = _shuffled(_shares(profile.direct_answers, shape["answered_item_types"]), rng)
    urgent = round(n_handed * shape["urgent_share"])
    very = round(n_handed * shape["very_urgent_share"])
    urgencies = _shuffled({"very_urgent": very, "urgent": urgent, "normal": n_handed - urgent - very}, rng)
    items: list[Item] = []
    valid: list[Item] = []
    valid_at: list[datetime] = []
    masters: list[tuple[Item, Item]] = []
    for at, kind in zip(times, kinds, strict=True):
        if kind == "valid":
            sub, handed = topics.pop()
            channel = channels.pop()
            item = Item("valid", at, channel, handed_types.pop() if handed else answered_types.pop(), sub,
                        _district(channel, rng), handed=handed)
            if handed:
                item.urgency = urgencies.pop()
                if item.item_type == "suggestion":
                    item.adopted = rng.random() < shape["suggestions_adopted_share"]
            valid.append(item)
            valid_at.append(at)
        else:
            channel = other_channels.pop()
            # A duplicate repeats a valid item of the three days before it.
            first = bisect.bisect_left(valid_at, at - timedelta(days=3))
            if kind == "merged" and first < len(valid):
                master = valid[rng.randrange(first, len(valid))]
                item = Item("merged", at, channel, master.item_type, master.sub, master.district)
                masters.append((item, master))
            else:
                item = Item("invalid", at, channel, "consultation", None, _district(channel, rng))
        items.append(item)
    _number(items, get_settings().city_code)
    for item, master in masters:
        item.master = master.number
    return items


def _district(channel: str, rng: random.Random) -> str:
    if channel == "county_platform" or rng.random() < 0.12:
        return rng.choices(list(COUNTIES), weights=list(COUNTIES.values()))[0]
    return rng.choices(list(URBAN), weights=list(URBAN.values()))[0]


def _number(items: list[Item], city: str) -> None:
    """Numbers as Duban hands them out: city, local day, sequence of the day."""
    seq: Counter[date] = Counter()
    for item in items:
        day = item.at.astimezone(LOCAL).date()
        seq[day] += 1
        item.number = f"{city}{day:%Y%m%d}-{seq[day]:06d}"


def _traits(profile: Profile, rng: random.Random, policy: Policy, data: dict, handed: list[Item]) -> Traits:
    """Route the handed items, and pick the units that pass the buck, run late or close falsely."""
    for item in handed:
        item.lead, assists = policy.route(item.sub or "", item.district)
        item.assists = tuple(a for a in assists if a != item.lead)
    kinds = {u["code"]: u["kind"] for u in data["units"]}
    volume = Counter(i.lead for i in handed)
    candidates = [u for u, _ in volume.most_common() if kinds.get(u) not in ("platform",) and u != "urban_management"]
    shape = profile.shape
    # Buck-passers and false closers among the busiest units; the late ones among the middle of the
    # ranking, so a few units run late rather than the year's biggest handlers.
    busy = rng.sample(candidates[:12], min(len(candidates[:12]), shape["buck_passers"] + shape["false_closers"]))
    middle = [u for u in candidates[8:24] if u not in busy]
    late = rng.sample(middle, min(len(middle), shape["late_units"]))
    a = shape["buck_passers"]
    picked = busy[:a] + late + busy[a:]
    b = a + len(late)
    return Traits(frozenset(picked[:a]), frozenset(picked[a:b]), frozenset(picked[b:]), shape["return_share"],
                  shape["late_share"], shape["send_back_share"])


def _alternatives(data: dict) -> dict[str, str]:
    """Where an approved return goes: urban management takes what others refuse, a district what it refuses."""
    return {u["code"]: "urban_management" if u["code"] != "urban_management" else "tianyuan_gov"
            for u in data["units"]}


def _settle_year_end(profile: Profile, lives: Lives, handed: list[Item], end: datetime) -> set[int]:
    """Exactly the profile's share of handed items still open at the year's end: hurry some, hold some back."""
    target = round(profile.handed_to_units * (100 - profile.completion_rate_pct) / 100)
    open_ = [i for i in handed if lives.close_at(i, visit=False) >= end]
    if len(open_) > target:
        for item in sorted(open_, key=lambda i: i.at):
            for speed in (0.3, 0.1, 0.02):
                lives.handle(item, speed=speed)
                if lives.close_at(item, visit=False) < end:
                    break
            if sum(1 for i in open_ if lives.close_at(i, visit=False) >= end) <= target:
                break
    elif len(open_) < target:
        recent = [i for i in handed if end - timedelta(days=40) <= i.at and lives.close_at(i, visit=False) < end]
        recent.sort(key=lambda i: (i.lead not in lives.traits.late, -i.at.timestamp()))
        for item in recent[:target - len(open_)]:
            lives.handle(item, stuck_until=end)
    return {id(i) for i in handed if lives.close_at(i, visit=False) >= end}


def _visits(profile: Profile, rng: random.Random, lives: Lives, handed: list[Item], open_: set[int],
            end: datetime, traits: Traits) -> dict[int, str]:
    """Which orders get a return visit, and the few where the citizen is not satisfied."""
    unsatisfied = round(profile.return_visits * (100 - profile.satisfaction_rate_pct) / 100)
    if profile.satisfaction_rate_pct < 100 and profile.return_visits:
        # At least one false completion for supervision to find, even in a year scaled far down.
        unsatisfied = max(1, unsatisfied)
    first_visits = profile.return_visits - unsatisfied
    eligible = [i for i in handed if id(i) not in open_ and lives.close_at(i, visit=True) < end]
    redo_able = [i for i in eligible if i.item_type != "suggestion" and i.at < end - timedelta(days=45)]
    redo_able.sort(key=lambda i: (i.final_lead not in traits.false_closers, rng.random()))
    visits = {id(i): "unsatisfied" for i in redo_able[:unsatisfied]}
    rest = [i for i in eligible if id(i) not in visits]
    keyed = sorted(rest, key=lambda i: rng.random() ** (1 / VISIT_WEIGHT[i.item_type]), reverse=True)
    for item in keyed[:first_visits - len(visits)]:
        visits[id(item)] = "basically" if rng.random() < 0.04 else "satisfied"
    return visits


def _calls(profile: Profile, rng: random.Random, days: list[tuple[date, float]], handed: list[Item],
           city: str) -> list[CallRecord]:
    """The call log: connected contacts that did not become a work order."""
    shape = profile.shape
    orders = profile.valid_items + shape["invalid_orders"] + shape["merged_orders"]
    total = profile.calls_connected - orders
    county_orders = round(orders * shape["channel_shares"]["county_platform"])
    county = profile.calls_from_county_platforms - county_orders
    if total < 0 or not 0 <= county <= total:
        raise ValidationFailed(f"the profile's calls ({profile.calls_connected}, {profile.calls_from_county_platforms}"
                               f" from county platforms) are fewer than its orders ({orders})")
    channels = _shuffled({"county_platform": county, **_shares(total - county, OTHER_CALL_CHANNELS)}, rng)
    outcomes = _shuffled(_shares(total, shape["call_outcomes"]), rng)
    handed_at = [i.at for i in handed]
    calls: list[CallRecord] = []
    seq: Counter[date] = Counter()
    for at in _times(days, total, rng):
        outcome = outcomes.pop()
        order = None
        if outcome in ("progress_query", "repeat"):
            before = bisect.bisect_left(handed_at, at)
            order = handed[rng.randrange(max(0, before - 20000), before)].number if before else None
        day = at.date()
        seq[day] += 1
        calls.append(CallRecord(0, f"{city}C{day:%Y%m%d}-{seq[day]:06d}", at, channels.pop(), outcome, order))
    return calls


def _write(out: Path, profile: Profile, seed: int, calls: list[CallRecord], items: list[Item], data: dict,
           rng: random.Random, summary: SimulationSummary, progress: Callable[[int], None] | None) -> None:
    year = profile.year
    streets: dict[str, list[str]] = {}
    for d in data["districts"]:
        if d["parent"]:
            streets.setdefault(d["parent"], []).append(d["name_zh"])
    district_names = {d["code"]: d["name_zh"] for d in data["districts"]}
    names = {c["code"]: c["name_zh"] for c in data["categories"]}
    tmp = out.with_name(out.name + ".part")
    with tmp.open("w", encoding="utf-8") as fh:
        source = f"duban simulate year --year {year} --profile {profile.name} --seed {seed} --scale {profile.scale:g}"
        fh.write(dump_line(Header(0, VERSION, get_settings().city_code, date(year, 1, 1), date(year, 12, 31),
                                  source)) + "\n")
        if profile.prior_calls_connected is not None or profile.prior_valid_items is not None:
            fh.write(dump_line(TotalsRecord(0, date(year - 1, 1, 1), date(year - 1, 12, 31),
                                            profile.prior_calls_connected, None, profile.prior_valid_items,
                                            f"{profile.name} prior year (derived)")) + "\n")
        for call in calls:
            fh.write(dump_line(call) + "\n")
        for n, item in enumerate(items, start=1):
            fh.write(dump_line(_record(item, rng, names, district_names, streets)) + "\n")
            summary.actions += len(item.steps)
            if progress and n % 10000 == 0:
                progress(10000)
    tmp.replace(out)


def _record(item: Item, rng: random.Random, names: dict[str, str], district_names: dict[str, str],
            streets: dict[str, list[str]]) -> OrderRecord:
    topic = names.get(item.sub or "", "其他事项")
    address, citizen = "", {"name": "", "phone": "", "email": "", "confidential": False}
    if item.handed:
        if item.item_type != "consultation" and item.district:
            street = rng.choice(streets.get(item.district, [""]))
            address = f"{district_names.get(item.district, '')}{street}{rng.randint(1, 300)}号"
        citizen = {"name": "", "phone": f"1{rng.choice('3456789')}{rng.randrange(10 ** 9):09d}", "email": "",
                   "confidential": rng.random() < 0.02}
    return OrderRecord(0, item.number, item.at, item.channel, item.item_type, f"{TYPE_ZH[item.item_type]}：{topic}",
                       tuple(item.steps), urgency=item.urgency, category=item.sub, district=item.district,
                       address=address, citizen=citizen)
