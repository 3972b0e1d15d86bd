"""The Airflow web UI in a real browser (headless Chromium, Debian's chromium-driver): log in to
prod's Airflow as a person does, after make demo's promotion (dev -> staging -> prod), open the
Releases page and a DAG run's page, and find the release they ran."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

from tests.conftest import ROOT
from tests.integration.conftest import AIRFLOW, airflow_token, dataops_ok, promote_dev_to_prod

pytestmark = pytest.mark.integration
PROD = AIRFLOW["prod"]
SHOTS = ROOT / ".dataops" / "screenshots"


def active(env: str) -> str:
    return str(
        json.loads((ROOT / ".dataops" / "releases" / f"active-{env}.json").read_text())["release"]
    )


@pytest.fixture(scope="module")
def prod_release(pipelines_ready: dict[str, str]) -> str:
    """Prod runs a release that came from dev as `make demo` brings it (checked in dev,
    promoted to staging, smoke-checked there, promoted to prod with an approval), unless prod
    already runs dev's release (test_promotion got there first); then one prod run of airlines,
    whose note names the release."""
    prod = ROOT / ".dataops" / "releases" / "active-prod.json"
    if not prod.exists() or active("prod") != active("dev"):
        promote_dev_to_prod("browser test")
    dataops_ok("run", "airlines", "--env", "prod", "--date", "2013-01-01")
    return active("prod")


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(flag)
    options.add_argument("--window-size=1200,800")
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(check: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def log_in(browser: webdriver.Chrome, password: str) -> None:
    browser.get(f"{PROD}/")
    wait_for(lambda: bool(browser.find_elements(By.CSS_SELECTOR, "input[type=password]")), "login")
    user = browser.find_elements(By.CSS_SELECTOR, "input:not([type=password])")[0]
    user.send_keys("admin")
    browser.find_element(By.CSS_SELECTOR, "input[type=password]").send_keys(password)
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait_for(lambda: browser.get_cookie("_token") is not None, "the session cookie")


def test_a_person_finds_the_release_on_prods_releases_page_and_on_a_run(
    browser: webdriver.Chrome, pipelines_ready: dict[str, str], prod_release: str
) -> None:
    release_id = prod_release
    log_in(browser, pipelines_ready["DATAOPS_AIRFLOW_PROD_PASSWORD"])
    SHOTS.mkdir(parents=True, exist_ok=True)

    browser.get(f"{PROD}/dataops/releases")
    wait_for(lambda: release_id in browser.page_source, "the active release on the page")
    assert browser.find_element(By.ID, "active-release").text == release_id
    images = browser.find_element(By.ID, "images").text
    record = json.loads((ROOT / ".dataops" / "releases" / "active-prod.json").read_text())
    for info in record["images"].values():  # the three digests, as prod's registry serves them
        assert info["ref"] in images, (info["ref"], images)
    assert images.count("127.0.0.1:5003/dataops/") == 3
    # What staging runs that prod does not yet (or that prod runs what staging runs).
    upstream = browser.find_element(By.ID, "upstream").text
    assert active("staging") in upstream, upstream
    browser.save_screenshot(str(SHOTS / "releases-page.png"))

    # The page is in the UI's navigation too (the plugin's external view, in the UI's frame).
    browser.get(f"{PROD}/plugin/releases")
    wait_for(lambda: bool(browser.find_elements(By.TAG_NAME, "iframe")), "the embedded page")

    token = airflow_token("prod", pipelines_ready)
    runs = httpx.get(
        f"{PROD}/api/v2/dags/airlines/dagRuns",
        params={"limit": 100},
        headers={"Authorization": f"Bearer {token}"},
    ).json()["dag_runs"]
    # The run prod_release started on the active release (its bundle version).
    ours = [r for r in runs if r.get("bundle_version") == release_id]
    assert ours, [(r["dag_run_id"], r.get("bundle_version")) for r in runs]
    run = ours[-1]
    assert f"on release {release_id[7:19]}" in (run.get("note") or "")
    browser.get(f"{PROD}/dags/airlines/runs/{run['dag_run_id']}/details")
    wait_for(lambda: release_id in browser.page_source, "the release on the run's page")
    assert f"on release {release_id[7:19]}" in browser.page_source  # the run's note
    browser.save_screenshot(str(SHOTS / "dag-run.png"))
