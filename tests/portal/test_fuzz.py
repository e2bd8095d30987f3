"""Property-based fuzzing of the intake and Open311 APIs from their served OpenAPI description.

Schemathesis generates requests, valid and invalid, for every intake and Open311 operation; each must get
no server error and a response that matches the description, and no request may leave half an item behind:
a refused POST adds no row at all, an accepted one adds exactly one order with its first event.
"""

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance
from sqlalchemy import func, select

from duban.db import session_scope
from models.intake import IntakeToken
from models.records import Event
from models.work_order import WorkOrder
from portal.app import create_app
from tests.conftest import BACKENDS
from tests.intake_helpers import channel, shared_directory

# Examples per operation and database: a quick run in the suite; DUBAN_FUZZ_EXAMPLES=100 for a longer campaign.
# The cases tried (more than the examples: schemathesis adds its coverage phase) are printed with -s.
EXAMPLES = int(os.environ.get("DUBAN_FUZZ_EXAMPLES", "10"))
schema = schemathesis.openapi.from_asgi("/openapi.json", create_app()).include(
    path_regex=r"^/(api/v1/items|open311/)")
TRIED: dict[str, int] = {}


@pytest.fixture(scope="module", params=BACKENDS)
def fuzz_key(request, tmp_path_factory):
    with shared_directory(request.param, tmp_path_factory.mktemp("fuzz")):
        _, key = channel("fuzz", "open311")
        yield key
    accepted = TRIED.pop("accepted", 0)
    print(f"\nfuzz cases tried on {request.param}: {sum(TRIED.values())}, items accepted {accepted} ({TRIED})")
    TRIED.clear()


def _rows() -> tuple[int, int, int]:
    with session_scope(readonly=True) as session:
        return tuple(session.scalar(select(func.count()).select_from(model)) for model in (WorkOrder, Event,
                                                                                           IntakeToken))


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.filter_too_much])
def test_no_server_error_and_no_half_written_item(case, fuzz_key):
    if case.method == "POST" and case.path.startswith("/open311") and isinstance(case.body, dict):
        case.body["api_key"] = fuzz_key
    before = _rows()
    response = case.call(headers={"X-API-Key": fuzz_key})
    TRIED[case.operation.label] = TRIED.get(case.operation.label, 0) + 1
    case.validate_response(response, checks=[not_a_server_error, status_code_conformance,
                                             response_schema_conformance])
    orders, events, tokens = (after - earlier for after, earlier in zip(_rows(), before, strict=True))
    if case.method == "POST" and response.status_code in (200, 201) and orders:
        TRIED["accepted"] = TRIED.get("accepted", 0) + 1
        assert orders == 1 and events == 1, response.text
        assert tokens == (1 if case.path.startswith("/open311") else 0)
    else:
        assert (orders, events, tokens) == (0, 0, 0), (case.path, response.status_code, response.text)
