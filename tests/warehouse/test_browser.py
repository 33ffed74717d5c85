"""End to end in a real browser: log in as staff, open a pipeline's page, check the SVG charts.

Needs Debian's ``chromium`` and ``chromium-driver`` and the ``selenium`` package.
Under CI (``CI=true``) a missing browser is a failure; locally the test is
skipped with the reason. ``CHROMIUM_BIN`` / ``CHROMEDRIVER_BIN`` override the paths.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil

import pytest
from django.contrib.auth import get_user_model

from dw_analytics.warehouse.models import PipelineRun, QuarantinedRow

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1360,1000",
]
N_RUNS = 6


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"browser test cannot run under CI: {reason}")
    pytest.skip(reason)


def _find(env: str, *candidates: str) -> str | None:
    """The executable named by ``env`` if set (and nothing else), else the first candidate found."""
    names = [os.environ[env]] if os.environ.get(env) else candidates
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture
def browser(tmp_path, monkeypatch):
    """A headless Chromium driven by chromedriver, with a fresh profile."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _unavailable("selenium is not installed (pip install 'selenium>=4.20')")
    chromium = _find("CHROMIUM_BIN", "chromium", "chromium-browser")
    driver_path = _find("CHROMEDRIVER_BIN", "chromedriver", "/usr/lib/chromium/chromedriver")
    if not chromium or not driver_path:
        _unavailable("chromium / chromedriver not found (apt-get install -y chromium chromium-driver)")
    # explicit paths: Selenium Manager must not try to download anything
    monkeypatch.setenv("SE_OFFLINE", "true")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'chromium-profile'}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_staff_member_sees_one_chart_point_per_nightly_run(browser, live_server, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    get_user_model().objects.create_user("ops", password="pw-ops-browser-1", is_staff=True)
    start = dt.datetime(2026, 3, 1, 3, 0, tzinfo=dt.UTC)
    runs = []
    for day in range(N_RUNS):
        failed = day == 3
        runs.append(
            PipelineRun.objects.create(
                pipeline="nightly",
                status="failed" if failed else "succeeded",
                started_at=start + dt.timedelta(days=day),
                finished_at=start + dt.timedelta(days=day, seconds=40 + 5 * day),
                duration_s=40.0 + 5 * day,
                n_processed=100_000 + 2_500 * day,
                n_errors=7 if failed else 0,
                peak_rss_mb=180.0 + 4 * day,
                steps=[
                    {
                        "name": "etl.extract",
                        "duration_s": 8.0 + day,
                        "peak_rss_mb": 150.0,
                        "n_rows": 100_000,
                    },
                    {
                        "name": "etl.load",
                        "duration_s": 12.0,
                        "peak_rss_mb": 170.0,
                        "n_rows": 100_000,
                    },
                    {
                        "name": "analytics.transform",
                        "duration_s": 9.5,
                        "peak_rss_mb": 180.0,
                        "n_rows": 12,
                    },
                    {
                        "name": "publish",
                        "duration_s": 4.0 + day,
                        "peak_rss_mb": 160.0,
                        "n_rows": None,
                    },
                ],
                parameters={"chunksize": 100_000},
                error="ValueError: column 'valor' has 7 values that are not numbers" if failed else "",
                traceback="Traceback (most recent call last):\n  ...\nValueError: ..." if failed else "",
                triggered_by="cron",
            )
        )
    QuarantinedRow.objects.create(
        run=runs[3], file="fonte.csv", line=42, column="valor", value="12,3x", reason="not a number"
    )

    # log in through the admin's login form (CSRF token included by the page)
    browser.get(f"{live_server.url}/runs/nightly/")
    assert "/admin/login/" in browser.current_url
    browser.find_element(By.NAME, "username").send_keys("ops")
    browser.find_element(By.NAME, "password").send_keys("pw-ops-browser-1")
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    # the click returns before the redirect's page has loaded on a busy machine: wait for it
    WebDriverWait(browser, 15).until(EC.url_to_be(f"{live_server.url}/runs/nightly/"))
    WebDriverWait(browser, 15).until(EC.presence_of_element_located((By.ID, "chart-memory")))

    for key in ("duration", "rows", "memory"):
        chart = browser.find_element(By.ID, f"chart-{key}")
        assert chart.tag_name == "svg"
        points = chart.find_elements(By.CSS_SELECTOR, "circle.point")
        assert len(points) == N_RUNS, key
        assert all(p.is_displayed() for p in points)
    duration_points = browser.find_elements(By.CSS_SELECTOR, "#chart-duration circle.point")
    tooltips = [p.find_element(By.TAG_NAME, "title").get_attribute("textContent") for p in duration_points]
    assert tooltips[0] == f"Run #{runs[0].pk} · 2026-03-01 00:00 · 40.00 s · succeeded"
    assert tooltips[3] == f"Run #{runs[3].pk} · 2026-03-04 00:00 · 55.00 s · failed"
    assert len(browser.find_elements(By.CSS_SELECTOR, "#chart-duration circle.point-failed")) == 1
    assert len(browser.find_elements(By.CSS_SELECTOR, "#chart-steps rect.bar")) == 4
    # the stylesheet was served and applied (the chart is laid out, not a raw 300x150 box)
    assert browser.find_element(By.ID, "chart-duration").size["width"] > 400
    browser.save_screenshot(str(tmp_path / "pipeline-nightly.png"))
    assert (tmp_path / "pipeline-nightly.png").stat().st_size > 10_000

    # a chart point links to its run, whose page lists the quarantined row
    browser.get(f"{live_server.url}/runs/{runs[3].pk}/")
    assert browser.find_element(By.CSS_SELECTOR, "#quarantine-rows tbody td code").text == "fonte.csv"
    assert browser.find_element(By.CSS_SELECTOR, ".error-message").text.startswith("ValueError: column 'valor'")
    browser.save_screenshot(str(tmp_path / "run-detail.png"))

    browser.get(f"{live_server.url}/runs/")
    assert len(browser.find_elements(By.CSS_SELECTOR, "#runs tbody tr")) == N_RUNS
    browser.save_screenshot(str(tmp_path / "run-list.png"))
