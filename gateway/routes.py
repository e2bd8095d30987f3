"""Every Prefect API route the UI uses, classified by the least role that may call it; the rest is refused."""

import re
from dataclasses import dataclass

from models.accounts import ROLE_RANK, Role

_READ_COLLECTIONS = (
    "flows|flow_runs|task_runs|deployments|work_pools|work_queues|artifacts|automations|flow_run_states|"
    "task_run_states|concurrency_limits|v2/concurrency_limits|saved_searches|block_types|block_schemas|"
    "block_capabilities|collections|events|logs|variables|task_workers"
)
_CHANGED = "deployments|automations|work_pools|work_queues|variables|block_documents|concurrency_limits|" \
           "v2/concurrency_limits|flows|artifacts|saved_searches"
_ID = r"[0-9a-fA-F-]{36}"


@dataclass(frozen=True)
class Rule:
    """Methods and a path pattern (after /api), the least role allowed, and the audit action if one is logged."""

    methods: frozenset[str]
    pattern: re.Pattern[str]
    role: Role
    audit: str | None = None


def _rule(methods: str, pattern: str, role: Role, audit: str | None = None) -> Rule:
    return Rule(frozenset(methods.split()), re.compile(f"^{pattern}$"), role, audit)


# First match wins: reads are listed before the broader write rules of the same collections.
API_RULES: tuple[Rule, ...] = (
    # The UI reads the server's settings at start; the server obfuscates the secret ones.
    _rule("GET", r"/(health|ready|version|hello|admin/version|admin/settings|admin/storage)", Role.VIEWER),
    _rule("GET", rf"/({_READ_COLLECTIONS})(/.*)?", Role.VIEWER),
    _rule("POST", rf"/({_READ_COLLECTIONS})(/[^/]+)*/(filter|count|paginate|history|lateness|next|count-by/[a-z_]+)",
          Role.VIEWER),
    _rule("POST", r"/ui/(flow_runs|flows|task_runs|schemas)/[a-z/_-]+", Role.VIEWER),
    _rule("POST", rf"/flow_runs/{_ID}/resume", Role.DECIDER, "decision"),
    _rule("POST", rf"/flow_runs/{_ID}/set_state", Role.ADMIN, "flow_run_state_set"),
    _rule("DELETE", rf"/flow_runs/{_ID}", Role.ADMIN, "flow_run_deleted"),
    _rule("POST PATCH PUT DELETE", r"/deployments(/.*)?", Role.ADMIN, "deployment_changed"),
    _rule("POST PATCH PUT DELETE", r"/automations(/.*)?", Role.ADMIN, "automation_changed"),
    _rule("POST PATCH PUT DELETE", r"/(work_pools|work_queues)(/.*)?", Role.ADMIN, "work_pool_changed"),
    _rule("GET", r"/block_documents(/.*)?", Role.ADMIN),
    _rule("POST", r"/block_documents/filter", Role.ADMIN),
    _rule("POST PATCH PUT DELETE", rf"/({_CHANGED})(/.*)?", Role.ADMIN, "configuration_changed"),
)

# The UI's live feeds; anything else over a websocket (workers' and clients' channels) is refused.
WEBSOCKET_PATHS = frozenset({"/events/out", "/logs/out"})

# The UI outside /api (its bundle, its settings, and the page routes that all return its index): read-only.
_UI_RULE = Rule(frozenset({"GET", "HEAD"}), re.compile(r"^/.*$"), Role.VIEWER)


def classify(method: str, path: str) -> Rule | None:
    """The rule for a request to the Prefect server (its full path), or None when it is not classified."""
    method = method.upper()
    if path.startswith("/api/") or path == "/api":
        api_path = path.removeprefix("/api") or "/"
        return next((r for r in API_RULES if method in r.methods and r.pattern.match(api_path)), None)
    return _UI_RULE if method in _UI_RULE.methods else None


def allows(user_role: Role, rule: Rule) -> bool:
    """Whether a role includes the rule's least role."""
    return ROLE_RANK[user_role] >= ROLE_RANK[rule.role]
