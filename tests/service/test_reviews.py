"""The data officers' API over real HTTP: queue, pair, decisions, cluster, history, split, merge."""

from __future__ import annotations

import math
from typing import Any

import httpx

from tests.service.conftest import LiveService


def _queue(client: httpx.Client, **params: Any) -> dict[str, Any]:
    response = client.get("/v1/reviews", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _pair_with_two_ccis(client: httpx.Client) -> dict[str, Any]:
    for item in _queue(client, limit=200)["items"]:
        left, right = item["left"], item["right"]
        if left["cci"] and right["cci"] and left["cci"] != right["cci"]:
            return item
    raise AssertionError("the demo registry left no review pair across two visible CCIs")


def test_queue_is_ordered_counted_filtered_and_paged(live_sqlite: LiveService) -> None:
    client = live_sqlite.client("reviewer")
    body = _queue(client, limit=200)
    items = body["items"]
    assert body["total"] == len(items) > 0
    keys = [(not i["merges_nhs_anchored"], abs(i["match_probability"] - 0.5)) for i in items]
    assert keys == sorted(keys)
    assert sum(body["waiting_by_source"].values()) >= body["total"]
    page = _queue(client, offset=1, limit=1)
    assert page["items"] == items[1:2] and page["total"] == body["total"]
    health = _queue(client, source_system="health", limit=200)
    assert health["total"] == body["waiting_by_source"].get("health", 0)
    assert all(
        "health" in (i["left"]["source_system"], i["right"]["source_system"])
        or None in (i["left"]["source_system"], i["right"]["source_system"])
        for i in health["items"]
    )
    assert "encod" not in str(body) and "_tok" not in str(body)


def test_pair_view_shows_the_waterfall_and_never_encodings(live_sqlite: LiveService) -> None:
    client = live_sqlite.client("reviewer")
    item = _queue(client, limit=1)["items"][0]
    pair = client.get(f"/v1/reviews/{item['id']}").json()
    assert pair["status"] == "open" and 0 < pair["prior_probability"] < 0.5
    names = {p["comparison"] for p in pair["parts"]}
    assert {"given_name", "family_name", "date_of_birth"} <= names
    prior = pair["prior_probability"]
    bars = sum((p["match_weight"] or 0) + p["tf_adjustment"] for p in pair["parts"])
    total = math.log2(prior / (1 - prior)) + bars
    assert abs(total - pair["match_weight"]) < 1e-6
    assert not any(k.endswith(("_enc", "_tok", "_bf0")) for k in str(pair).split("'"))
    assert client.get("/v1/reviews/999999999").status_code == 404


def test_restricted_records_of_other_systems_show_only_their_kind(
    live_sqlite: LiveService,
) -> None:
    client = live_sqlite.client("reviewer")  # bound to education
    for item in _queue(client, limit=200)["items"]:
        for side in (item["left"], item["right"]):
            if side["restricted"] and side["source_kind"] != "education":
                assert side["source_system"] is side["record_id"] is side["cci"] is None
            else:
                assert side["source_system"] and side["record_id"]


def test_scope_is_required(live_sqlite: LiveService) -> None:
    for role in ("school", "admin"):
        client = live_sqlite.client(role)
        assert client.get("/v1/reviews").status_code == 403
        answer = client.post("/v1/reviews/1/decision", json={"verdict": "same"})
        assert answer.status_code == 403
        assert answer.headers["content-type"] == "application/problem+json"
    assert live_sqlite.client().get("/v1/reviews").status_code == 401


def test_same_then_different_merges_and_splits_with_events(live: LiveService) -> None:
    reviewer, admin = live.client("reviewer"), live.client("admin")
    item = _pair_with_two_ccis(reviewer)
    first, second = item["left"]["cci"], item["right"]["cci"]
    cursor = admin.get("/v1/events", params={"limit": 1000}).json()["next_cursor"]

    same = reviewer.post(
        f"/v1/reviews/{item['id']}/decision", json={"verdict": "same", "reason": "checked"}
    )
    assert same.status_code == 200, same.text
    result = same.json()
    assert sorted(result["ccis_before"]) == sorted({first, second})
    (survivor,) = [c["cci"] for c in result["clusters"]]
    gone = ({first, second} - {survivor}).pop()
    resolved = live.client("gp").get(f"/v1/identifiers/{gone}").json()
    assert resolved["status"] == "superseded" and resolved["resolved_cci"] == survivor
    feed = admin.get("/v1/events", params={"after": cursor}).json()["events"]
    assert {"superseded"} <= {e["type"] for e in feed if e["cci"] == gone}
    pair = reviewer.get(f"/v1/reviews/{item['id']}").json()
    assert pair["status"] == "decided" and pair["decisions"][-1]["verdict"] == "same"
    assert item["id"] not in [i["id"] for i in _queue(reviewer, limit=200)["items"]]

    cluster = reviewer.get(f"/v1/identifiers/{survivor}/cluster").json()
    assert len(cluster["records"]) >= 2
    weights = [link["match_weight"] for link in cluster["links"]]
    assert weights == sorted(weights)

    different = reviewer.post(
        f"/v1/reviews/{item['id']}/decision", json={"verdict": "different"}
    ).json()
    assert len(different["clusters"]) == 2
    assert {c["cci"] for c in different["clusters"]} == {first, second}  # merge undone
    history = reviewer.get(f"/v1/identifiers/{gone}/history").json()["events"]
    assert [e["type"] for e in history if e["cci"] == gone][-1] in ("reinstated", "reassigned")
    assert "superseded" in [e["type"] for e in history]


def test_split_and_merge_identifiers(live: LiveService) -> None:
    reviewer = live.client("reviewer")
    school = live.client("school")
    cluster = None
    for row in live.rows:
        if row["source_system"] != "education" or row.get("restricted"):
            continue
        cci = school.get(f"/v1/records/education/{row['record_id']}").json()["cci"]
        found = reviewer.get(f"/v1/identifiers/{cci}/cluster").json()
        if len(found["records"]) >= 2 and all(r["record_id"] for r in found["records"]):
            cluster = found
            break
    assert cluster is not None, "no multi-record cluster visible in the demo registry"
    record = cluster["records"][0]
    answer = reviewer.post(
        f"/v1/identifiers/{cluster['cci']}/split",
        json={"source_system": record["source_system"], "record_id": record["record_id"]},
    )
    assert answer.status_code == 200, answer.text
    ccis = {c["cci"] for c in answer.json()["clusters"]}
    assert cluster["cci"] in ccis and len(ccis) == 2
    (new,) = ccis - {cluster["cci"]}
    assert any(e["type"] == "split" for e in answer.json()["events"])

    merged = reviewer.post(
        f"/v1/identifiers/{cluster['cci']}/merge", json={"other_cci": new, "reason": "undo"}
    )
    assert merged.status_code == 200, merged.text
    (survivor,) = [c["cci"] for c in merged.json()["clusters"]]
    assert survivor in (cluster["cci"], new)  # the larger, else the NHS-anchored, else older
    (gone,) = {cluster["cci"], new} - {survivor}
    assert {"type": "superseded", "cci": gone, "related_cci": survivor} in merged.json()["events"]
    again = reviewer.post(f"/v1/identifiers/{survivor}/merge", json={"other_cci": gone})
    assert again.status_code == 409
    assert again.headers["content-type"] == "application/problem+json"
