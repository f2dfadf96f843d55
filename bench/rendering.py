"""Benchmark: rendering a delivery request from its template vs. building the same body in code.

Run: .venv/bin/python bench/rendering.py [--count 5000]

- baseline: the REST create body as a dict, truncated and json.dumps'ed (what the targets did
  before templates);
- template: `render_request` of the default Active create request (sandboxed Jinja2, escaping,
  parse-and-truncate) for the same alert, REST (JSON) and SOAP (XML).
The ratio template/baseline is the price of admin-editable payloads per request.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from adapters.targets.autotask.profile import REST_PROFILE, SOAP_PROFILE
from connector.domain import AlertStatus, RequestAction  # noqa: E402
from connector.payloads.requests import generate_requests, render_request, sample_context  # noqa: E402
from connector.payloads.samples import SAMPLE_CONTEXT  # noqa: E402

PROFILES = {"rest": REST_PROFILE, "soap": SOAP_PROFILE}


def baseline(count: int) -> float:
    """Seconds to build `count` create bodies in code."""
    alert, mapped = SAMPLE_CONTEXT.alert, SAMPLE_CONTEXT.mapped
    start = time.perf_counter()
    for _ in range(count):
        body = {
            "companyID": mapped.company_id,
            "title": alert.title[:255],
            "description": SAMPLE_CONTEXT.description[:8000],
            "status": mapped.status,
            "priority": mapped.priority,
            "queueID": mapped.queue_id,
            "issueType": mapped.issue_type,
            "subIssueType": mapped.sub_issue_type,
            "externalID": SAMPLE_CONTEXT.marker,
        }
        json.dumps({k: v for k, v in body.items() if v is not None})
    return time.perf_counter() - start


def templated(count: int, flavour: str) -> float:
    """Seconds to render `count` Active create requests from the default template."""
    (spec,) = [
        s
        for s in generate_requests(PROFILES[flavour])
        if s.slot == (AlertStatus.ACTIVE, RequestAction.CREATE)
    ]
    context = sample_context(PROFILES[flavour])
    render_request(spec, context, PROFILES[flavour])  # compile once, as the worker's cache does
    start = time.perf_counter()
    for _ in range(count):
        render_request(spec, context, PROFILES[flavour])
    return time.perf_counter() - start


def main() -> None:
    """Print requests per second for each way and the ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=5000)
    count = parser.parse_args().count
    base = baseline(count)
    print(f"baseline (dict + json.dumps): {count / base:10.0f} bodies/s")
    for flavour in ("rest", "soap"):
        seconds = templated(count, flavour)
        print(
            f"template {flavour:4} (render_request):  {count / seconds:10.0f} requests/s"
            f"  ratio {seconds / base:5.1f}x baseline time"
        )


if __name__ == "__main__":
    main()
