"""API fuzz: schemathesis against a live server's own `/api/v1/openapi.json`.

Every operation of the document gets generated requests, valid ones (positive) and
invalid ones (negative), each sent with the admin key; operations whose path names
resources get a third round with the ids of resources that exist (a tenant, its
destination, an event, a schedule, an API token, an environment variable), made again
before each operation, so that generated queries and bodies reach the handlers' work and
not only their 404. Every response must not be a server error (5xx) and must conform to
the document: a documented status code, a documented content type, and a body that
validates against the documented schema.

    python api_fuzz.py --base-url http://127.0.0.1:PORT --api-key KEY [--max-examples N]

Prints one summary line

    api_fuzz: <operations> operations, <cases> cases, <errors> server errors, <violations> schema violations

after a line per distinct failure, and exits non-zero when either count is non-zero.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter

import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import Failure, FailureGroup, ServerError
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


class Tally:
    """Counts of cases and failures; failures are also kept, once per kind and place."""

    def __init__(self) -> None:
        self.cases = 0
        self.server_errors = 0
        self.violations = 0
        self.seen: Counter[tuple[str, str, str]] = Counter()
        self.examples: dict[tuple[str, str, str], str] = {}

    def record(self, operation: str, mode: str, failure: Failure, request: str) -> None:
        if isinstance(failure, ServerError):
            self.server_errors += 1
            kind = "server error"
        else:
            self.violations += 1
            kind = "schema violation"
        key = (kind, operation, failure.title)
        self.seen[key] += 1
        if key not in self.examples:
            message = " ".join(str(failure.message).split())[:300]
            self.examples[key] = f"{mode}: {request} -> {message}"


def failures_of(error: BaseException) -> list[Failure]:
    if isinstance(error, FailureGroup):
        return [f for e in error.exceptions for f in failures_of(e)]
    if isinstance(error, Failure):
        return [error]
    raise error


TENANT = "fuzz-tenant"
DESTINATION = "fuzz-destination"
EVENT = "fuzz-event"
VARIABLE = "FUZZ_VARIABLE"
# Path parameters the known-ids round fills in (what `seed` returns).
KNOWN = {"tenant_id", "destination_id", "event_id", "name", "schedule_id", "token_id", "type"}


def seed(base: str, session: requests.Session) -> dict[str, str]:
    """Make (again) the resources of the known-ids round; returns path parameter values."""
    api = f"{base}/api/v1"

    def call(method: str, path: str, body=None, ok=(200, 201, 202, 409)):
        response = session.request(method, f"{api}{path}", json=body, timeout=30)
        if response.status_code not in ok:
            raise RuntimeError(f"seeding: {method} {path}: {response.status_code} {response.text}")
        return response

    call("PUT", f"/tenants/{TENANT}", ok=(200, 201))
    destination = {
        "id": DESTINATION,
        "type": "webhook",
        "topics": "*",
        "config": {"url": "http://127.0.0.1:9/fuzz"},
    }
    call("POST", f"/tenants/{TENANT}/destinations", destination)
    call("POST", "/publish", {"id": EVENT, "tenant_id": TENANT, "topic": "fuzz.topic", "data": {"n": 1}})
    call("POST", "/environment-variables", {"name": VARIABLE, "value": "v"})
    schedule = call("POST", "/schedules", {"tenant_id": TENANT, "interval": "1h", "data": {"n": 1}})
    token = call("POST", "/api-tokens", {"name": "fuzz"})
    return {
        "tenant_id": TENANT,
        "destination_id": DESTINATION,
        "event_id": EVENT,
        "name": VARIABLE,
        "schedule_id": schedule.json()["id"],
        "token_id": token.json()["identifier"],
        "type": "webhook",
    }


def fuzz_operation(
    operation, mode: GenerationMode, args, session, tally: Tally, path_parameters=None
) -> None:
    label = operation.label

    @settings(
        max_examples=args.max_examples,
        deadline=None,
        database=None,
        derandomize=not args.random,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )
    @given(case=operation.as_strategy(generation_mode=mode, path_parameters=path_parameters))
    def run(case) -> None:
        tally.cases += 1
        response = case.call(base_url=args.base_url, session=session, timeout=30)
        try:
            case.validate_response(response, checks=CHECKS)
        except (Failure, FailureGroup) as error:
            request = f"{response.request.method} {response.request.url}"
            for failure in failures_of(error):
                round_name = "known ids" if path_parameters else mode.value
                tally.record(label, round_name, failure, request)

    try:
        run()
    except Unsatisfiable:
        # Nothing to make invalid (negative mode of an operation without inputs).
        pass


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", required=True, help="http://127.0.0.1:PORT")
    parser.add_argument("--api-key", required=True, help="the server's admin key")
    parser.add_argument("--max-examples", type=int, default=20, help="cases per operation and mode")
    parser.add_argument(
        "--random", action="store_true", help="new cases each run (default: the same cases every run)"
    )
    args = parser.parse_args()
    args.base_url = args.base_url.rstrip("/")

    schema = schemathesis.openapi.from_url(f"{args.base_url}/api/v1/openapi.json", timeout=30)
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {args.api_key}"
    tally = Tally()
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            fuzz_operation(operation, mode, args, session, tally)
        names = [p.name for p in operation.path_parameters]
        if names and all(name in KNOWN for name in names):
            known = seed(args.base_url, session)
            fixed = {name: known[name] for name in names}
            fuzz_operation(operation, GenerationMode.POSITIVE, args, session, tally, fixed)

    for (kind, operation, title), count in sorted(tally.seen.items()):
        example = tally.examples[(kind, operation, title)]
        print(f"  {kind}: {operation}: {title} (x{count}); e.g. {example}")
    print(
        f"api_fuzz: {operations} operations, {tally.cases} cases, "
        f"{tally.server_errors} server errors, {tally.violations} schema violations"
    )
    return 1 if tally.server_errors or tally.violations else 0


if __name__ == "__main__":
    sys.exit(main())
