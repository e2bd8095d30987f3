"""policy.yaml: the shipped files, the rules they answer, and errors named by key and line."""

from datetime import date
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from duban.errors import PolicyError
from models.calendar import Amount, TimeUnit
from models.policy import Policy, check_references, load_policy, parse_policy, policy_warnings

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = (ROOT / "policy.yaml").read_text(encoding="utf-8")
TOP_CATEGORIES = {
    "hr_social_security",
    "emergency_management",
    "urban_rural_planning_construction",
    "housing_land",
    "transportation",
    "public_security",
    "city_appearance_life_services",
    "finance_commerce",
    "resources_environment",
    "science_education_culture_health",
}


@pytest.fixture(scope="module")
def policy() -> Policy:
    return load_policy(ROOT / "policy.yaml")


def edited(*changes: tuple[str, str], text: str = SHIPPED) -> str:
    for old, new in changes:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    return text


def line_of(text: str, snippet: str) -> int:
    """1-based number of the first line containing `snippet` outside a comment."""
    return next(number for number, line in enumerate(text.splitlines(), start=1) if snippet in line.split("#", 1)[0])


def error_of(text: str) -> str:
    with pytest.raises(PolicyError) as caught:
        parse_policy(text)
    return str(caught.value)


def directory() -> dict:
    return YAML(typ="safe").load((ROOT / "duban" / "data" / "directory.yaml").read_text(encoding="utf-8"))


def category_codes(nodes: list[dict]) -> set[str]:
    codes: set[str] = set()
    for node in nodes:
        codes.add(node["code"])
        codes |= category_codes(node.get("children", []))
    return codes


@pytest.mark.parametrize("name", ["policy.yaml", "policy.demo.yaml"])
def test_shipped_policies_load(name: str) -> None:
    loaded = load_policy(ROOT / name)
    assert loaded.source_text == (ROOT / name).read_text(encoding="utf-8")
    assert [step.rung for step in loaded.escalation.ladder] == ["warning", "overdue", "case", "notice"]
    assert loaded.work_calendar() is loaded.work_calendar()


def test_demo_policy_counts_in_minutes() -> None:
    demo = load_policy(ROOT / "policy.demo.yaml")
    assert demo.time_limit("sign_for", item_type="complaint", urgency="normal") == Amount(2, TimeUnit.MINUTES)
    assert demo.time_limit("handling", item_type="complaint", urgency="normal") == Amount(4, TimeUnit.MINUTES)
    assert all(step.after is None or step.after.unit is TimeUnit.MINUTES for step in demo.escalation.ladder)


def test_time_limit_defaults_and_item_types(policy: Policy) -> None:
    assert policy.time_limit("sign_for", item_type="complaint", urgency="normal") == Amount.parse("2 working_hours")
    assert policy.time_limit("handling", item_type="complaint", urgency="normal") == Amount.parse("5 working_days")
    assert policy.time_limit("handling", item_type="help_request", urgency="normal") == Amount.parse("5 working_days")
    assert policy.time_limit("handling", item_type="consultation", urgency="normal") == Amount.parse("3 working_days")
    assert policy.time_limit("handling", item_type="suggestion", urgency="normal") == Amount.parse("10 working_days")


def test_first_matching_rule_that_sets_the_stage_wins(policy: Policy) -> None:
    # The urgency rule comes before the consultation rule, so it decides handling...
    assert policy.time_limit("handling", item_type="consultation", urgency="urgent") == Amount.parse("2 working_days")
    # ...but it sets no return_visit, so the consultation rule still decides that one.
    assert policy.time_limit("return_visit", item_type="consultation", urgency="urgent") == Amount.parse("1 working_days")
    assert policy.time_limit("sign_for", item_type="complaint", urgency="very_urgent") == Amount.parse("30 minutes")
    assert policy.time_limit("review", item_type="consultation", urgency="normal") == Amount.parse("1 working_days")


def test_time_limit_category_matches_by_prefix(policy: Policy) -> None:
    sub = "emergency_management.work_safety"
    assert policy.time_limit("sign_for", item_type="report", urgency="normal", category=sub) == Amount.parse("1 working_hours")
    for other in ("emergency_managementx", None):
        assert policy.time_limit("sign_for", item_type="report", urgency="normal", category=other) == Amount.parse(
            "2 working_hours"
        )


def test_time_limit_refuses_unknown_stage(policy: Policy) -> None:
    with pytest.raises(ValueError, match="unknown stage"):
        policy.time_limit("lunch", item_type="complaint", urgency="normal")


def test_route_first_match_then_fallback(policy: Policy) -> None:
    assert policy.route("hr_social_security.unemployment_subsidy", "tianyuan") == ("hrss", [])
    assert policy.route("hr_social_security.remote_medical_settlement", None) == ("medical_security", ["hrss"])
    assert policy.route("city_appearance_life_services.manhole_covers", "hetang")[0] == "urban_management"
    assert policy.route("city_appearance_life_services.garbage_station_odour", "hetang") == ("hetang_gov", ["urban_management"])
    assert policy.route("city_appearance_life_services.garbage_station_odour", None) == ("urban_management", [])
    assert policy.route("hr_social_security", "liling") == ("liling_12345", [])
    assert policy.route("unclassified", None) == ("zz12345", [])


def test_route_returns_a_copy(policy: Policy) -> None:
    policy.route("hr_social_security.remote_medical_settlement", None)[1].append("x")
    assert policy.route("hr_social_security.remote_medical_settlement", None) == ("medical_security", ["hrss"])


def test_stages_for(policy: Policy) -> None:
    assert policy.stages_for("complaint").review == "human"
    assert policy.stages_for("complaint").return_visit_share == 1.0
    assert policy.stages_for("report").review == "auto"
    assert 0 < policy.stages_for("consultation").return_visit_share < 1


def test_content_hash_ignores_comments_and_tracks_values(policy: Policy) -> None:
    assert parse_policy("# a new comment\n" + SHIPPED).content_hash() == policy.content_hash()
    assert parse_policy(edited(("max_returns: 2 ", "max_returns: 3 "))).content_hash() != policy.content_hash()
    assert "source_text" not in policy.model_dump()


def test_bad_time_limit_string() -> None:
    text = edited(("handling: 5 working_days ", "handling: 5 workdays "))
    assert (
        f'policy.yaml:{line_of(text, "5 workdays")}: time_limits.default.handling: "5 workdays" is not a time limit; '
        'write e.g. "5 working_days", "8 working_hours" or "30 minutes"'
    ) in error_of(text)


def test_zero_time_limit() -> None:
    text = edited(("sign_for: 30 minutes", "sign_for: 0 minutes"))
    message = error_of(text)
    assert f"policy.yaml:{line_of(text, '0 minutes')}: time_limits.rules[0].sign_for: " in message
    assert "more than zero" in message


def test_unknown_item_type_key() -> None:
    text = edited(("    complaint:    {", "    complain:    {"))
    message = error_of(text)
    assert f'policy.yaml:{line_of(text, "complain: ")}: stages.by_item_type.complain: "complain" is not an item type' in message
    assert "complaint" in message


def test_unknown_item_type_in_rule() -> None:
    text = edited(("when: {item_type: suggestion}", "when: {item_type: suggest}"))
    assert f"policy.yaml:{line_of(text, 'suggest}')}: time_limits.rules[4].when.item_type: " in error_of(text)


def test_ladder_out_of_order() -> None:
    text = edited(("    - rung: warning\n    - rung: overdue\n", "    - rung: overdue\n    - rung: warning\n"))
    message = error_of(text)
    assert f'policy.yaml:{line_of(text, "rung: warning")}: escalation.ladder[1].rung: "warning" comes after "overdue"' in message


def test_ladder_delays_must_not_shrink() -> None:
    text = edited(("after: 3 working_days", "after: 2 working_hours"))
    message = error_of(text)
    assert f"policy.yaml:{line_of(text, 'after: 2 working_hours')}: escalation.ladder[3].after: " in message
    assert "shorter than the case rung" in message


def test_ladder_rungs_and_delays() -> None:
    text = edited(("      after: 1 working_days\n", ""), ("    - rung: overdue\n", "    - rung: overdue\n      after: 1 hours\n"))
    message = error_of(text)
    assert f"policy.yaml:{line_of(text, 'after: 1 hours')}: escalation.ladder[1].after: the overdue rung fires at the deadline" in message
    assert f'policy.yaml:{line_of(text, "rung: case")}: escalation.ladder[2]: the case rung needs "after"' in message


def test_share_above_one() -> None:
    text = edited(("complaint:    {review: human, return_visit_share: 1.0}", "complaint:    {review: human, return_visit_share: 1.5}"))
    message = error_of(text)
    assert f"policy.yaml:{line_of(text, '1.5}')}: stages.by_item_type.complaint.return_visit_share: 1.5 is out of range" in message


def test_warning_fraction_range() -> None:
    text = edited(("warning_fraction: 0.8", "warning_fraction: 1.5"))
    assert f"policy.yaml:{line_of(text, 'warning_fraction: 1.5')}: time_limits.warning_fraction: 1.5 is out of range" in error_of(text)


def test_yaml_syntax_error() -> None:
    text = edited(("  max_requests: 2 ", "  max_requests: [2 "))
    message = error_of(text)
    assert message.startswith("policy.yaml:")
    assert "YAML syntax error" in message
    assert int(message.split(":")[1]) >= line_of(text, "max_requests: [2")


def test_impossible_date_names_its_line() -> None:
    text = edited(("  holidays: []", "  holidays: [2026-02-30]"))
    assert error_of(text).startswith(f"policy.yaml:{line_of(text, '2026-02-30')}: 2026-02-30 is not a date")


def test_missing_required_key() -> None:
    text = edited(("  fallback: zz12345\n", ""))
    assert f"policy.yaml:{line_of(text, 'routing:')}: routing.fallback: required key is missing" in error_of(text)


def test_unknown_key_suggests_the_right_one() -> None:
    text = edited(("  max_requests: 2 ", "  max_requestz: 2 "))
    message = error_of(text)
    assert f'policy.yaml:{line_of(text, "max_requestz")}: extensions.max_requestz: unknown key (did you mean "max_requests"?)' in message


def test_empty_file() -> None:
    assert error_of("").startswith("policy.yaml:1: expected a mapping of sections")


def test_all_errors_are_collected_at_once() -> None:
    text = edited(
        ("handling: 5 working_days ", "handling: 5 workdays "),
        ("    complaint:    {", "    complain:    {"),
        ("warning_fraction: 0.8", "warning_fraction: 0"),
        ("    - duban@zz12345.example.gov.cn", "    - duban at zz12345"),
        ("    max_units: 3 ", "    max_units: three "),
    )
    message = error_of(text)
    assert message.splitlines()[0] == "policy.yaml: 5 problems:"
    paths = [line.split(": ")[1] for line in message.splitlines()[1:]]
    assert paths == [
        "time_limits.default.handling",
        "time_limits.warning_fraction",
        "escalation.buck_passing.max_units",
        "stages.by_item_type.complain",
        "recipients.supervisors[0]",
    ]


def test_load_policy_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(edited(("handling: 5 working_days ", "handling: 5 workdays ")), encoding="utf-8")
    with pytest.raises(PolicyError, match=rf"^{path}: 1 problem:\n{path}:\d+: time_limits.default.handling"):
        load_policy(path)
    with pytest.raises(PolicyError, match="cannot read"):
        load_policy(tmp_path / "missing.yaml")


ENTERED_2027 = (("  holidays: []", "  holidays: [2027-01-01, 2027-02-05, 2027-02-08]"), ("  years: []", "  years: [2027]"))


def test_warning_in_november_for_an_uncovered_next_year(policy: Policy) -> None:
    (warning,) = policy_warnings(policy, date(2026, 11, 2))
    assert f"policy.yaml:{line_of(SHIPPED, '  years: []')}: calendar.years: 2027 is not covered" in warning
    assert "calendar.holidays" in warning and "calendar.workdays" in warning and "add 2027 to calendar.years" in warning


def test_no_warning_once_next_year_is_entered() -> None:
    entered = parse_policy(edited(*ENTERED_2027))
    assert policy_warnings(entered, date(2026, 11, 2)) == []
    assert entered.work_calendar().covers(2027)
    assert not entered.work_calendar().is_workday(date(2027, 2, 8))


def test_no_warning_before_november(policy: Policy) -> None:
    assert policy_warnings(policy, date(2026, 6, 15)) == []


def test_warning_all_year_when_this_year_is_uncovered(policy: Policy) -> None:
    (warning,) = policy_warnings(policy, date(2027, 3, 1))
    assert "2027 is not covered" in warning


def test_dates_must_fall_in_a_known_year() -> None:
    text = edited(("  holidays: []", "  holidays: [2025-10-09, 2028-01-03]"))
    message = error_of(text)
    assert f"policy.yaml:{line_of(text, '2028-01-03')}: calendar.holidays[1]: 2028-01-03 is in 2028" in message
    assert "holidays[0]" not in message


def test_entered_year_needs_holidays() -> None:
    text = edited(("  years: []", "  years: [2027]"))
    assert f"policy.yaml:{line_of(text, 'years: [2027]')}: calendar.years[0]: 2027 is listed as entered" in error_of(text)


def test_check_references_names_unknown_codes(policy: Policy) -> None:
    small = parse_policy(edited(("    - {category: hr_social_security, lead: hrss}", "    - {category: hr_social_security, lead: hrs}")))
    problems = check_references(
        small,
        units={"hrss", "zz12345"},
        categories={"hr_social_security", "city_appearance_life_services.cables"},
        districts={"tianyuan"},
    )
    hrs = next(problem for problem in problems if '"hrs"' in problem)
    line = line_of(small.source_text, "lead: hrs}")
    assert hrs == f'policy.yaml:{line}: routing.rules[5].lead: unknown unit "hrs"; it is not in the directory (did you mean "hrss"?)'
    assert any("routing.rules[0].district" in problem and '"liling"' in problem for problem in problems)
    assert not any("routing.fallback" in problem for problem in problems)


def test_shipped_routing_uses_directory_codes_only(policy: Policy) -> None:
    tree = directory()
    categories = category_codes(tree["categories"])
    assert check_references(
        policy,
        units={unit["code"] for unit in tree["units"]},
        categories=categories,
        districts={district["code"] for district in tree["districts"]},
    ) == []
    assert {node["code"] for node in tree["categories"]} == TOP_CATEGORIES
    # Every category has a routing rule; only unclassified items reach the hotline office's desk.
    assert [code for code in sorted(categories) if policy.route(code, None)[0] == policy.routing.fallback] == []


def test_on_site_categories_are_the_named_ones(policy: Policy) -> None:
    assert {code.rsplit(".", 1)[1] for code in policy.escalation.buck_passing.on_site_categories} == {
        "cables",
        "manhole_covers",
        "fire_escape_parking",
    }
