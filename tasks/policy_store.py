"""Which policy is in force: the current applied version, or policy.yaml before any was applied."""

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from duban.settings import get_settings
from models.policy import Policy, load_policy, parse_policy
from models.records import PolicyVersion

_BY_VERSION: dict[int, Policy] = {}
_VERSIONS = PolicyVersion.__table__
_CURRENT_NUMBER = select(_VERSIONS.c.number).where(_VERSIONS.c.current.is_(True))


@dataclass(frozen=True)
class PolicyInForce:
    version: int
    policy: Policy


def current_policy(session: Session) -> PolicyInForce:
    """The current policy; re-read whenever another process applied a new version."""
    # The version number alone, then the text only for a version this process has not parsed yet.
    number = current_number(session)
    return PolicyInForce(number, policy_version(session, number))


def current_number(session: Session) -> int:
    """The number of the policy version in force (0 before any was applied: the file named in settings)."""
    return session.connection().execute(_CURRENT_NUMBER).scalar() or 0


def policy_version(session: Session, number: int) -> Policy:
    """The policy an order started under (version 0 is the file named in settings)."""
    if number not in _BY_VERSION:
        if number == 0:
            _BY_VERSION[0] = load_policy(get_settings().policy_file)
        else:
            content = session.scalar(select(PolicyVersion.content).where(PolicyVersion.number == number))
            if content is None:
                from duban.errors import NotFound

                raise NotFound(f"policy version {number} does not exist; see `duban policy history`")
            _BY_VERSION[number] = parse_policy(content, source=f"policy version {number}")
    return _BY_VERSION[number]


def forget_policies() -> None:
    """Drop cached policies (tests, and after the policy file changed on disk)."""
    _BY_VERSION.clear()
