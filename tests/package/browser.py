"""A headless Chromium for page tests: Debian's `chromium` and `chromedriver` (`make browser`
installs them) driven by selenium. Fails, never skips, when they are missing."""
from __future__ import annotations

import shutil
import time

import pytest

CHROMIUM = ("chromium", "chromium-browser", "google-chrome")


def chromium():
    """A selenium Chrome driver on headless Chromium (the caller quits it)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary = next((shutil.which(b) for b in CHROMIUM if shutil.which(b)), None)
    driver_path = shutil.which("chromedriver")
    if not binary or not driver_path:
        pytest.fail("headless Chromium is needed: `make browser` installs Debian's chromium and chromium-driver")
    opts = webdriver.ChromeOptions()
    opts.binary_location = binary
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--window-size=1400,1000", "--disable-extensions", "--no-first-run"):
        opts.add_argument(a)
    return webdriver.Chrome(service=Service(driver_path), options=opts)  # a given driver: nothing downloaded


def wait_for(predicate, timeout: float, what: str, step: float = 0.05):
    """Poll `predicate` until it returns something truthy; fail naming `what` after `timeout` s."""
    end = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > end:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(step)
