"""Records over real HTTP: submit (real-time CCI), look up, withdraw; on SQLite and PostgreSQL."""

from __future__ import annotations

from tests.service.conftest import LiveService


def test_submit_look_up_and_withdraw(live: LiveService) -> None:
    school = live.client("school")
    known = next(r for r in live.rows if r["source_system"] == "education")
    copy = dict(known, record_id="copy-" + known["record_id"])

    answer = school.post("/v1/records", json=copy)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["decision"] == "linked" and body["grade"] == "certain"
    original = school.get(f"/v1/records/education/{known['record_id']}").json()
    assert body["cci"] == original["cci"]

    # Unchanged resubmission: same CCI, nothing new.
    again = school.post("/v1/records", json=copy).json()
    assert again["decision"] == "existing" and again["cci"] == body["cci"]

    stranger = next(r for r in live.unseen if r["source_system"] == "education")
    fresh = school.post("/v1/records", json=stranger).json()
    assert fresh["decision"] in {"new", "review"} and fresh["cci"] != body["cci"]

    withdrawn = school.delete(f"/v1/records/education/{stranger['record_id']}")
    assert withdrawn.status_code == 200 and withdrawn.json()["status"] == "withdrawn"
    assert withdrawn.json()["cci"] is None
    gone = live.client("admin").get("/v1/events", params={"after": 0, "limit": 1000}).json()
    types = [(e["type"], e["cci"]) for e in gone["events"]]
    assert ("withdrawn", fresh["cci"]) in types and ("retired", fresh["cci"]) in types


def test_errors_are_problem_documents(live_sqlite: LiveService) -> None:
    anonymous = live_sqlite.client()
    refused = anonymous.post("/v1/records", content=b"not even json")
    assert refused.status_code == 401
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["status"] == 401

    school = live_sqlite.client("school")
    known = dict(next(r for r in live_sqlite.rows if r["source_system"] == "education"))
    known["dob_tok"] = "not a number"
    invalid = school.post("/v1/records", json=known)
    assert invalid.status_code == 422
    assert invalid.headers["content-type"] == "application/problem+json"
    assert any(e["field"] == "dob_tok" for e in invalid.json()["errors"])

    other = dict(next(r for r in live_sqlite.rows if r["source_system"] == "health"))
    assert school.post("/v1/records", json=other).status_code == 403
    assert school.get("/v1/records/education/no-such-record").status_code == 404
    big = school.post(
        "/v1/records", content=b"x" * 100_000, headers={"content-type": "application/json"}
    )
    assert big.status_code == 413
