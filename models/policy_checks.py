"""Checks on a whole policy beyond its schema: rules that can never apply, stages that never run."""

from models.policy import Policy
from models.policy_schema import RouteRule, RuleMatch
from models.policy_values import STAGE_NAMES, category_matches


def consistency_problems(policy: Policy) -> list[str]:
    """Messages, each naming the key and line, for entries the policy could never use."""
    return _shadowed_routes(policy) + _shadowed_limits(policy) + _unreachable_stages(policy)


def _covers_route(earlier: RouteRule, later: RouteRule) -> bool:
    """Whether every order `later` matches is matched by `earlier` first."""
    category_ok = earlier.category is None or (
        later.category is not None and category_matches(earlier.category, later.category))
    return category_ok and (earlier.district is None or earlier.district == later.district)


def _covers_match(earlier: RuleMatch, later: RuleMatch) -> bool:
    """Whether every order `later` matches is matched by `earlier` too."""
    return ((earlier.item_type is None or earlier.item_type == later.item_type)
            and (earlier.urgency is None or earlier.urgency == later.urgency)
            and (earlier.category is None
                 or (later.category is not None and category_matches(earlier.category, later.category))))


def _shadowed_routes(policy: Policy) -> list[str]:
    found = []
    rules = policy.routing.rules
    for j, later in enumerate(rules):
        i = next((i for i in range(j) if _covers_route(rules[i], later)), None)
        if i is not None:
            first = policy.where(("routing", "rules", i))
            found.append(f"{policy.where(('routing', 'rules', j))}: never used: {first} comes first "
                         "and matches every order this rule matches; move the narrower rule up")
    return found


def _shadowed_limits(policy: Policy) -> list[str]:
    found = []
    rules = policy.time_limits.rules
    for j, later in enumerate(rules):
        for stage in STAGE_NAMES:
            if getattr(later, stage) is None:
                continue
            i = next((i for i in range(j) if getattr(rules[i], stage) is not None
                      and _covers_match(rules[i].when, later.when)), None)
            if i is not None:
                found.append(f"{policy.where(('time_limits', 'rules', j, stage))}: never used: "
                             f"{policy.where(('time_limits', 'rules', i, stage))} sets {stage} first for every "
                             "order this rule matches; move the narrower rule up")
    return found


def _unreachable_stages(policy: Policy) -> list[str]:
    """Limits set for a stage the item type never enters (automatic review, no return visits)."""
    found = []
    for j, rule in enumerate(policy.time_limits.rules):
        if rule.when.item_type is None:
            continue
        stages = policy.stages_for(rule.when.item_type)
        skipped = {"review": stages.review == "auto", "return_visit": stages.return_visit_share == 0}
        for stage, never in skipped.items():
            if never and getattr(rule, stage) is not None:
                found.append(f"{policy.where(('time_limits', 'rules', j, stage))}: unreachable stage: "
                             f"{rule.when.item_type} orders never enter {stage} "
                             f"(see stages.by_item_type.{rule.when.item_type}); remove this limit")
    return found
