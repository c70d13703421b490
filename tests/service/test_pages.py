"""The review pages in a real browser: headless Debian chromium driven by Playwright.

Each page is screenshotted into test-artifacts/pages/ and checked with axe-core (from npm):
no serious or critical violations. Without chromium (or the npm packages) the tests are
skipped with a notice, except under CI (CI=true), where that is a failure.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.service.conftest import LiveService

ROOT = Path(__file__).parents[2]
CHROMIUM = os.environ.get("CCI_CHROMIUM", "/usr/bin/chromium")
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
GOVUK = ROOT / "node_modules" / "govuk-frontend" / "dist" / "govuk" / "govuk-frontend.min.css"
ARTIFACTS = ROOT / "test-artifacts" / "pages"


def _missing() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed"
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        return f"no chromium at {CHROMIUM} (apt-get install chromium)"
    if not AXE.exists() or not GOVUK.exists():
        return "npm packages missing (npm ci)"
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    missing = _missing()
    if missing:
        print(f"NOTICE: browser tests skipped: {missing}")
        if os.environ.get("CI") == "true":
            pytest.fail(f"browser tests need {missing} under CI")
        pytest.skip(missing)
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        executable = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
        launched = playwright.chromium.launch(
            executable_path=executable, headless=True, args=["--no-sandbox"]
        )
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context()
    opened = context.new_page()
    yield opened
    context.close()


def check(page: Any, name: str) -> None:
    """Screenshot the page and assert axe-core finds nothing serious or critical."""
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("async () => await axe.run(document)")
    bad = [
        (v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert bad == [], f"{name}: {bad}"


def sign_in(page: Any, live: LiveService, role: str = "reviewer") -> None:
    page.goto(live.url + "/review")
    assert page.url.endswith("/review/sign-in")
    page.get_by_label("API key").fill(live.keys[role])
    page.get_by_role("button", name="Sign in").click()


def test_review_journey(page: Any, live_sqlite: LiveService) -> None:
    live = live_sqlite
    page.goto(live.url + "/review/sign-in")
    check(page, "01-sign-in")
    sign_in(page, live)
    assert page.get_by_role("heading", name="Review queue").is_visible()
    check(page, "02-queue")

    # A pair whose two records carry two different CCIs, not both NHS-anchored (where the
    # NHS-number rule may keep the rest of the clusters apart, moving one record instead).
    reviewer = live.client("reviewer")
    items = reviewer.get("/v1/reviews", params={"limit": 200}).json()["items"]
    item = next(
        i
        for i in items
        if i["left"]["cci"]
        and i["right"]["cci"]
        and i["left"]["cci"] != i["right"]["cci"]
        and not i["merges_nhs_anchored"]
    )
    first, second = item["left"]["cci"], item["right"]["cci"]
    cursor = live.client("admin").get("/v1/events", params={"limit": 1000}).json()["next_cursor"]
    page.goto(live.url + "/review")
    page.get_by_role("link", name=f"Review pair {item['id']}", exact=True).click()
    assert page.get_by_role("heading", name="Are these the same child?").is_visible()
    assert page.locator("svg.cci-chart").count() == 1
    check(page, "03-pair")

    page.keyboard.press("Tab")  # keyboard: the skip link takes focus first
    assert page.evaluate("document.activeElement.textContent").strip() == "Skip to main content"
    same = page.get_by_label("Same child")
    same.focus()  # keyboard operable: a radio is chosen with the space bar
    page.keyboard.press("Space")
    assert same.is_checked()
    focus = "getComputedStyle(document.activeElement.nextElementSibling, '::before').boxShadow"
    assert page.evaluate(focus) not in ("none", "")  # the GOV.UK focus ring is visible
    page.get_by_label("Reason (optional)").fill("same child in both systems")
    page.get_by_role("button", name="Save decision").click()
    banner = page.locator(".govuk-notification-banner").inner_text()
    assert "Same child: recorded" in banner
    check(page, "04-pair-decided")

    gp = live.client("gp")
    states = {c: gp.get(f"/v1/identifiers/{c}").json() for c in (first, second)}
    (survivor,) = [c for c, s in states.items() if s["status"] == "active"]
    (gone,) = [c for c, s in states.items() if s["status"] == "superseded"]
    assert states[gone]["resolved_cci"] == survivor
    feed = live.client("admin").get("/v1/events", params={"after": cursor}).json()["events"]
    assert {"type": "superseded", "cci": gone, "related_cci": survivor} in [
        {k: e[k] for k in ("type", "cci", "related_cci")} for e in feed
    ]

    page.goto(f"{live.url}/review/clusters/{survivor}")
    assert page.locator("#records tbody tr").count() >= 2
    assert "superseded" in page.locator("#history").inner_text()
    check(page, "05-cluster-merged")

    # "Different children" on the merged cluster splits it again.
    page.goto(f"{live.url}/review/pairs/{item['id']}")
    page.locator("label[for=verdict-2]").click()
    page.get_by_role("button", name="Save decision").click()
    assert "Different children: recorded" in page.locator(".govuk-notification-banner").inner_text()
    after = {c: gp.get(f"/v1/identifiers/{c}").json()["status"] for c in (first, second)}
    assert after == {first: "active", second: "active"}
    page.goto(f"{live.url}/review/clusters/{gone}")
    assert "reinstated" in page.locator("#history").inner_text()
    check(page, "06-cluster-split")

    page.goto(live.url + "/review/quality")
    assert page.get_by_role("heading", name="Linkage quality").is_visible()
    assert "Decided pairs" in page.locator("#precision").inner_text()
    check(page, "07-quality")

    page.get_by_role("button", name="Sign out").click()
    assert page.url.endswith("/review/sign-in")
    assert "You have signed out" in page.content()
    page.goto(live.url + "/review/quality")
    assert page.url.endswith("/review/sign-in")


def test_forms_without_the_session_csrf_token_are_refused(
    page: Any, live_sqlite: LiveService
) -> None:
    sign_in(page, live_sqlite)
    page.evaluate(
        "document.querySelectorAll('input[name=csrf_token]').forEach(e => e.value = 'forged')"
    )
    with page.expect_response(lambda r: r.url.endswith("/review/sign-out")) as answer:
        page.get_by_role("button", name="Sign out").click()
    assert answer.value.status == 403
    assert "did not come from this service" in page.locator("#error-detail").inner_text()
    check(page, "08-csrf-refused")
    page.goto(live_sqlite.url + "/review")  # still signed in: the forged sign-out did nothing
    assert page.get_by_role("heading", name="Review queue").is_visible()


def test_a_key_without_the_review_scope_is_refused(page: Any, live_sqlite: LiveService) -> None:
    with page.expect_response(
        lambda r: r.url.endswith("/review/sign-in") and r.request.method == "POST"
    ) as answer:
        sign_in(page, live_sqlite, role="school")
    assert answer.value.status == 403
    assert "does not have the review scope" in page.locator(".govuk-error-summary").inner_text()
    check(page, "09-no-review-scope")
    page.goto(live_sqlite.url + "/review")
    assert page.url.endswith("/review/sign-in")
