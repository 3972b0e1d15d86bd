"""The Airflow web UI in a real browser (headless Chromium, Debian's chromium-driver): log in as
a person does, open the Releases page and a DAG run's page, and find the release they ran."""

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

pytestmark = pytest.mark.integration
DEV = "http://127.0.0.1:8080"
SHOTS = ROOT / ".dataops" / "screenshots"


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
    browser.get(f"{DEV}/")
    wait_for(lambda: bool(browser.find_elements(By.CSS_SELECTOR, "input[type=password]")), "login")
    user = browser.find_elements(By.CSS_SELECTOR, "input:not([type=password])")[0]
    user.send_keys("admin")
    browser.find_element(By.CSS_SELECTOR, "input[type=password]").send_keys(password)
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait_for(lambda: browser.get_cookie("_token") is not None, "the session cookie")


def test_a_person_finds_the_release_on_the_releases_page_and_on_a_run(
    browser: webdriver.Chrome, pipelines_ready: dict[str, str]
) -> None:
    release_id = json.loads((ROOT / ".dataops" / "releases" / "active-dev.json").read_text())[
        "release"
    ]
    password = pipelines_ready["DATAOPS_AIRFLOW_DEV_PASSWORD"]
    log_in(browser, password)
    SHOTS.mkdir(parents=True, exist_ok=True)

    browser.get(f"{DEV}/dataops/releases")
    wait_for(lambda: release_id in browser.page_source, "the active release on the page")
    shown = browser.find_element(By.ID, "active-release").text
    assert shown == release_id
    images = browser.find_element(By.ID, "images").text
    assert images.count("@sha256:") == 3
    browser.save_screenshot(str(SHOTS / "releases-page.png"))

    # The page is in the UI's navigation too (the plugin's external view, in the UI's frame).
    browser.get(f"{DEV}/plugin/releases")
    wait_for(lambda: bool(browser.find_elements(By.TAG_NAME, "iframe")), "the embedded page")

    token = httpx.post(
        f"{DEV}/auth/token", json={"username": "admin", "password": password}
    ).json()["access_token"]
    runs = httpx.get(
        f"{DEV}/api/v2/dags/airlines/dagRuns",
        params={"limit": 100},
        headers={"Authorization": f"Bearer {token}"},
    ).json()["dag_runs"]
    # The run pipelines_ready started on the active release (its bundle version).
    ours = [r for r in runs if r.get("bundle_version") == release_id]
    assert ours, [(r["dag_run_id"], r.get("bundle_version")) for r in runs]
    run = ours[-1]
    assert f"on release {release_id[7:19]}" in (run.get("note") or "")
    browser.get(f"{DEV}/dags/airlines/runs/{run['dag_run_id']}/details")
    wait_for(lambda: release_id in browser.page_source, "the release on the run's page")
    assert f"on release {release_id[7:19]}" in browser.page_source  # the run's note
    browser.save_screenshot(str(SHOTS / "dag-run.png"))
