"""Who may do what: every route x every role x own / other agency's data, over real HTTP.

Roles (tests/service/conftest.py): school (education: submit, read), gp (health: submit,
read, resolve, trace), social (social_care: submit, read, resolve), reader (education: read),
reviewer (education: review), admin (admin, no source system).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from linkage.store import make_engine
from linkage.store.models import Assignment, Identifier, Record, SourceSystem
from tests.service.conftest import LiveService

SOURCE_OF = {
    "school": "education",
    "gp": "health",
    "social": "social_care",
    "reader": "education",
    "reviewer": "education",
    "admin": None,
}
OTHER_OF = {"education": "health", "health": "education", "social_care": "health", None: "health"}


def _record(live: LiveService, source: str) -> dict[str, Any]:
    return next(r for r in live.rows if r["source_system"] == source)


def _cci(live: LiveService, source: str, record_id: str) -> str:
    role = {"education": "school", "health": "gp", "social_care": "social"}[source]
    answer = live.client(role).get(f"/v1/records/{source}/{record_id}")
    assert answer.status_code == 200, answer.text
    return str(answer.json()["cci"])


def _foreign_cci(live: LiveService, source: str) -> str:
    """An active CCI that no record of `source` carries or carried, restricted ones included
    (another agency's view of the holders leaves those out, so it cannot tell)."""
    engine = make_engine(live.database_url)
    try:
        with engine.connect() as connection:
            carried = (
                select(Assignment.cci)
                .join(Record, Record.id == Assignment.record_pk)
                .join(SourceSystem, SourceSystem.id == Record.source_system_id)
                .where(SourceSystem.code == source)
            )
            found = connection.scalar(
                select(Identifier.cci)
                .where(Identifier.status == "active", Identifier.cci.not_in(carried))
                .order_by(Identifier.cci)
                .limit(1)
            )
    finally:
        engine.dispose()
    assert found is not None, f"no CCI without a {source} record"
    return str(found)


ROLES = list(SOURCE_OF)


@pytest.mark.parametrize("role", ROLES)
def test_access_matrix(live_sqlite: LiveService, role: str) -> None:
    live = live_sqlite
    http = live.client(role)
    scopes = {
        "school": {"submit", "read"},
        "gp": {"submit", "read", "resolve", "trace"},
        "social": {"submit", "read", "resolve"},
        "reader": {"read"},
        "reviewer": {"review"},
        "admin": {"admin"},
    }[role]
    own_source = SOURCE_OF[role] or "education"
    other_source = OTHER_OF[SOURCE_OF[role]]
    own = _record(live, own_source)
    other = _record(live, other_source)
    own_is_mine = SOURCE_OF[role] is not None

    # Submit: own source with the submit scope; never as another source system.
    resubmit = dict(own)  # unchanged: answers "existing", changes nothing
    expected = 200 if ("submit" in scopes and own_is_mine) else 403
    assert http.post("/v1/records", json=resubmit).status_code == expected
    assert http.post("/v1/records", json=dict(other)).status_code == 403

    # Record look-up: own records with read; never another agency's.
    path = f"/v1/records/{own_source}/{own['record_id']}"
    assert http.get(path).status_code == (200 if "read" in scopes and own_is_mine else 403)
    other_path = f"/v1/records/{other_source}/{other['record_id']}"
    assert http.get(other_path).status_code == 403

    # Withdraw: only with submit, only own source (an unknown record id: 404 once allowed).
    missing = f"/v1/records/{own_source}/no-such-record"
    assert http.delete(missing).status_code == (404 if "submit" in scopes and own_is_mine else 403)
    assert http.delete(other_path).status_code == 403

    # Identifiers: own CCI with read; any CCI with resolve/trace; details by scope.
    own_cci = _cci(live, own_source, own["record_id"])
    foreign = _foreign_cci(live, own_source)
    reads_ids = bool(scopes & {"read", "resolve", "trace"})
    mine = http.get(f"/v1/identifiers/{own_cci}")
    if not reads_ids:
        assert mine.status_code == 403
    elif not own_is_mine and not scopes & {"resolve", "trace"}:
        assert mine.status_code == 404
    else:
        assert mine.status_code == 200
        body = mine.json()
        assert (body["source_systems"] is not None) == ("resolve" in scopes)
        assert (body["nhs_number_enc"] is not None) == ("trace" in scopes)
        assert "given_name_tok" not in mine.text and "dob_tok" not in mine.text
    elsewhere = http.get(f"/v1/identifiers/{foreign}")
    if not reads_ids:
        assert elsewhere.status_code == 403
    else:
        assert elsewhere.status_code == (200 if scopes & {"resolve", "trace"} else 404)

    # Change feed: read or admin.
    feed = http.get("/v1/events")
    assert feed.status_code == (200 if scopes & {"read", "admin"} else 403)

    # Admin routes.
    for admin_path in ("/v1/admin/runs", "/v1/admin/models"):
        assert http.get(admin_path).status_code == (200 if "admin" in scopes else 403)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer nope"},
        {"X-API-Key": "cci_wrong"},
        {"Authorization": "Basic x"},
    ],
)
def test_every_route_refuses_without_a_live_key(
    live_sqlite: LiveService, headers: dict[str, str]
) -> None:
    anonymous = live_sqlite.client(headers=headers)
    for method, path in [
        ("POST", "/v1/records"),
        ("GET", "/v1/records/education/x"),
        ("DELETE", "/v1/records/education/x"),
        ("GET", "/v1/identifiers/A0000000000"),
        ("GET", "/v1/events"),
        ("POST", "/v1/admin/runs"),
        ("GET", "/v1/admin/runs"),
        ("GET", "/v1/admin/models"),
        ("POST", "/v1/batches"),
        ("GET", "/v1/batches/x"),
        ("GET", "/v1/batches/x/assignments"),
        ("GET", "/v1/reviews"),
        ("POST", "/v1/reviews/1/decision"),
        ("GET", "/v1/identifiers/A0000000000/history"),
    ]:
        answer = anonymous.request(method, path, content=b"{broken")
        assert answer.status_code == 401, (method, path)
        assert answer.headers["content-type"] == "application/problem+json"


def test_x_api_key_header_works_too(live_sqlite: LiveService) -> None:
    http = live_sqlite.client(headers={"X-API-Key": live_sqlite.keys["reader"]})
    assert http.get("/v1/events").status_code == 200


def test_restricted_records_are_linked_but_never_disclosed(live: LiveService) -> None:
    school, gp, social = live.client("school"), live.client("gp"), live.client("social")
    child = _record(live, "education")
    cci = _cci(live, "education", child["record_id"])
    before = social.get(f"/v1/identifiers/{cci}").json()["source_systems"]

    hidden = dict(child, source_system="health", record_id="refuge-1", restricted=True)
    hidden["nhs_number_enc"] = None
    linked = gp.post("/v1/records", json=hidden).json()
    assert linked["cci"] == cci and linked["decision"] == "linked"

    # The health agency sees its own restricted record among the holders; others do not.
    assert "health" in gp.get(f"/v1/identifiers/{cci}").json()["source_systems"]
    assert social.get(f"/v1/identifiers/{cci}").json()["source_systems"] == before
    # The school's feed shows the change of its child's CCI but not whose record it was.
    events = school.get("/v1/events", params={"limit": 1000}).json()["events"]
    joined = [e for e in events if e["type"] == "reassigned" and e["cci"] == cci]
    assert joined and all(e["record_id"] != "refuge-1" for e in joined)


def test_fifty_concurrent_submissions_of_one_new_child_make_one_cci(live: LiveService) -> None:
    stranger = next(r for r in live.unseen if r["source_system"] == "education")
    copies = [dict(stranger, record_id=f"burst-{i}") for i in range(50)]

    def submit(row: dict[str, Any]) -> httpx.Response:
        with httpx.Client(base_url=live.url, timeout=120) as http:
            return http.post("/v1/records", json=row, headers={"X-API-Key": live.keys["school"]})

    with ThreadPoolExecutor(max_workers=50) as pool:
        answers = list(pool.map(submit, copies))
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers[:3]]
    ccis = {a.json()["cci"] for a in answers}
    assert len(ccis) == 1
    decisions = sorted(a.json()["decision"] for a in answers)
    assert decisions.count("linked") == 49

    # Cursors follow commit order: the feed lists the 50 assignments once each, in order.
    feed = live.client("admin").get("/v1/events", params={"limit": 1000}).json()["events"]
    cursors = [e["cursor"] for e in feed]
    assert cursors == sorted(cursors) and len(set(cursors)) == len(cursors)
    assert sum(e["type"] == "reassigned" and e["cci"] in ccis for e in feed) == 50
