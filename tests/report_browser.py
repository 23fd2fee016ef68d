"""Headless Debian Chromium through Selenium, for the HTML report tests (and for looking at a report).

Run as a script to screenshot a report: ``python tests/report_browser.py REPORT.html OUT.png``.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

CHROMIUM_CANDIDATES = ("chromium", "chromium-browser")
DRIVER_CANDIDATES = ("chromedriver",)
INSTALL_HINT = ("Debian's chromium and chromium-driver are needed for the browser tests: run "
                "scripts/install-system.sh (apt-get install -y chromium chromium-driver)")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-quic", "--disable-component-update", "--disable-sync", "--disable-default-apps",
         "--disable-extensions", "--disable-dev-shm-usage", "--hide-scrollbars", "--mute-audio",
         "--window-size=1400,1000")


def find_browser() -> tuple[str | None, str | None]:
    """(chromium, chromedriver) paths, or None for what is missing."""
    chromium = next((p for p in map(shutil.which, CHROMIUM_CANDIDATES) if p), None)
    driver = next((p for p in map(shutil.which, DRIVER_CANDIDATES) if p), None)
    return chromium, driver


class Browser:
    """One headless Chromium with a fresh profile, console and network logs enabled."""

    def __init__(self) -> None:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        chromium, driver = find_browser()
        if chromium is None or driver is None:
            raise RuntimeError(INSTALL_HINT)
        self.profile = tempfile.mkdtemp(prefix="referee-chromium-")
        opts = webdriver.ChromeOptions()
        opts.binary_location = chromium
        for f in FLAGS:
            opts.add_argument(f)
        opts.add_argument(f"--user-data-dir={self.profile}")
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
        # The driver path is given, so Selenium Manager never looks for (or downloads) one.
        self.driver = webdriver.Chrome(options=opts, service=Service(executable_path=driver))
        self.driver.set_page_load_timeout(60)
        self.driver.execute_cdp_cmd("Network.enable", {})

    def open(self, path: Path) -> None:
        """Load ``path``; the logs read afterwards cover this page only (the start page's are dropped)."""
        self.driver.get("about:blank")
        self.driver.get_log("browser")
        self.driver.get_log("performance")
        self.driver.get(Path(path).resolve().as_uri())

    def console(self) -> list[dict]:
        return self.driver.get_log("browser")

    def requests(self) -> list[str]:
        """URLs of every request the page made (from the DevTools Network events)."""
        urls = []
        for entry in self.driver.get_log("performance"):
            msg = json.loads(entry["message"])["message"]
            if msg.get("method") == "Network.requestWillBeSent":
                urls.append(msg["params"]["request"]["url"])
            elif msg.get("method") in ("Network.webSocketCreated",):
                urls.append(msg["params"]["url"])
        return urls

    def close(self) -> None:
        try:
            self.driver.quit()
        finally:
            shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def wait_for_plots(driver, timeout: float = 60.0) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, timeout).until(lambda d: d.execute_script(
        "return document.readyState === 'complete' && window.Plotly !== undefined && "
        "Array.from(document.querySelectorAll('[data-plot]')).filter(d => d.getAttribute('data-lazy') !== 'yes' "
        "&& !d.classList.contains('hidden')).every(d => d.querySelector('.main-svg') !== null)"))


def save_screenshot(driver, out: Path, element: str | None = None) -> None:
    """A PNG of the whole page, or of one element (the window is grown so that all of it shows)."""
    from selenium.webdriver.common.by import By

    height = int(driver.execute_script("return document.documentElement.scrollHeight"))
    driver.set_window_size(1400, min(height + 150, 8000))
    driver.execute_script("window.scrollTo(0, 0)")
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    if element:
        driver.find_element(By.CSS_SELECTOR, element).screenshot(str(out))
    else:
        driver.save_screenshot(str(out))


def screenshot(report: Path, out: Path, element: str | None = None) -> None:
    with Browser() as b:
        b.open(report)
        wait_for_plots(b.driver)
        save_screenshot(b.driver, out, element)
        for e in b.console():
            print("console:", e)


if __name__ == "__main__":
    screenshot(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else None)
