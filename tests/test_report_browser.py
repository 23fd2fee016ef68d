"""The HTML report in a real headless Chromium (Debian's chromium + chromium-driver, via Selenium).

Two reports: a real ``referee rank`` run with the small SmolLM2 judge on two prompts (one system's
name and one candidate carry markup and scripts), and a synthetic run folder with ties, style
effects, two judges and quoted error spans (tests/report_helpers.py). The browser is required:
when chromium or its driver is missing these tests FAIL (install them with
scripts/install-system.sh). Screenshots go to test-artifacts/ (report.png: the leaderboard).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from referee import RankOptions, rank

from conftest import EXAMPLE, ROOT, write_jsonl
from report_browser import INSTALL_HINT, Browser, find_browser, save_screenshot, wait_for_plots
from report_helpers import EVIL_SYSTEM, make_run
from referee.report import write_html_report

PROMPTS = ("q01", "q05")
EVIL_NAME = "careless <i>&amp;</i> co"
PAYLOAD = ('Water it. <script>window.__referee_pwned = true;</script><img src="x" '
           'onerror="window.__referee_img = true"> <b>bold?</b>')
ARTIFACT = ROOT / "test-artifacts" / "report.png"
ARTIFACT_FULL = ROOT / "test-artifacts" / "report-synthetic-full.png"


@pytest.fixture(scope="module")
def report(tmp_path_factory, smol_judge) -> Path:
    rows = [r for r in map(json.loads, EXAMPLE.read_text().splitlines()) if r["prompt_id"] in PROMPTS]
    for r in rows:
        if r["system"] == "careless":
            r["system"] = EVIL_NAME
            if r["prompt_id"] == "q05":
                r["output"] = PAYLOAD
    tmp = tmp_path_factory.mktemp("browser")
    src = write_jsonl(tmp / "candidates.jsonl", rows)
    result = rank(RankOptions(candidates=[src], output=tmp / "run", n_boot=50), judge=smol_judge)
    path = result.out_dir / "report.html"
    assert path.is_file(), "referee rank writes report.html by default"
    return path


@pytest.fixture(scope="module")
def synthetic_report(tmp_path_factory) -> Path:
    run = make_run(tmp_path_factory.mktemp("browser-synthetic") / "run", second_judge=True, pointwise=True,
                   ensemble=True)
    return write_html_report(run)


class Session:
    """One browser for the module; every console entry and request is kept for the last checks."""

    def __init__(self, browser: Browser) -> None:
        self.b = browser
        self.d = browser.driver
        self.path: Path | None = None
        self.opened: list[str] = []
        self.logs: list[dict] = []
        self.urls: list[str] = []

    def open(self, path: Path) -> None:
        if self.path == path:
            return
        self.collect()
        self.b.open(path)
        self.path = path
        self.opened.append(path.resolve().as_uri())
        wait_for_plots(self.d)

    def collect(self) -> None:
        if self.path is not None:
            self.logs += [{**e, "page": self.path.name} for e in self.b.console()]
            self.urls += self.b.requests()

    def js(self, script: str, *args):
        return self.d.execute_script(script, *args)


@pytest.fixture(scope="module")
def browser_session():
    chromium, driver = find_browser()
    if chromium is None or driver is None:
        pytest.fail(f"chromium={chromium}, chromedriver={driver}: {INSTALL_HINT}", pytrace=False)
    try:
        import selenium  # noqa: F401
    except ImportError:
        pytest.fail("selenium is not installed: pip install -e '.[test]'", pytrace=False)
    browser = Browser()
    try:
        yield Session(browser)
    finally:
        browser.close()


@pytest.fixture
def page(browser_session, report):
    browser_session.open(report)
    return browser_session


@pytest.fixture
def synthetic(browser_session, synthetic_report):
    browser_session.open(synthetic_report)
    return browser_session


def _visible_rows(s: Session, kind: str) -> list[str]:
    return s.js("return Array.from(document.querySelectorAll(`table.leaderboard[data-kind='${arguments[0]}'] "
                "tbody tr`)).filter(r => r.offsetParent !== null).map(r => r.getAttribute('data-system'))", kind)


def test_leaderboard_rows_render_and_screenshot(page, report):
    board = json.loads((report.parent / "leaderboard.json").read_text())["leaderboard"]
    assert _visible_rows(page, "raw") == [r["system"] for r in board]
    cells = page.js("return Array.from(document.querySelectorAll(\"table.leaderboard[data-kind='raw'] tbody tr\"))"
                    ".map(r => r.querySelector('td.system').innerText.trim())")
    assert any(c.startswith(EVIL_NAME) for c in cells)  # the name's markup is text
    save_screenshot(page.d, ARTIFACT, "#leaderboard")
    assert ARTIFACT.stat().st_size > 10_000
    page.collect()


def test_plots_render_with_literal_labels(page):
    rendered = page.js("return Array.from(document.querySelectorAll('[data-plot]')).filter(d => d.offsetParent "
                       "!== null).map(d => [d.getAttribute('data-plot'), d.querySelectorAll('.main-svg').length])")
    names = {n for n, k in rendered if k > 0}
    assert {"forest_raw", "heatmap"} <= names, rendered
    assert all(k > 0 for _, k in rendered), rendered
    # three systems: three markers with error bars in the forest plot, a 3x3 heatmap
    assert page.js("return document.querySelector(\"[data-plot='forest_raw'] .scatterlayer\")"
                   ".querySelectorAll('path.point').length") == 3
    ticks = page.js("return Array.from(document.querySelectorAll(\"[data-plot='heatmap'] .ytick text\"))"
                    ".map(t => t.textContent)")
    assert len(ticks) == 3 and EVIL_NAME in ticks
    page.collect()




def _shown(s: Session) -> tuple[list[str], list[str], str]:
    items = s.js("return Array.from(document.querySelectorAll('#prompt-list li')).filter(li => "
                 "li.offsetParent !== null).map(li => li.getAttribute('data-pid'))")
    panels = s.js("return Array.from(document.querySelectorAll('#prompt-panels article')).filter(a => "
                  "a.offsetParent !== null).map(a => a.getAttribute('data-pid'))")
    return items, panels, s.js("return document.getElementById('prompt-count').textContent")


def _search(s: Session, text: str) -> None:
    from selenium.webdriver.common.by import By

    box = s.d.find_element(By.ID, "search")
    box.clear()
    if text:
        box.send_keys(text)
    else:  # clear() fires no input event
        s.js("document.getElementById('search').dispatchEvent(new Event('input'))")


def test_explorer_renders_and_search_filters_prompts(page):
    items, panels, count = _shown(page)
    assert items == list(PROMPTS) and panels == ["q01"] and count == "2 of 2 prompts"
    first = page.js("const a = document.querySelector(\"article[data-pid='q01']\"); return "
                    "[a.querySelectorAll('.cand').length, a.querySelectorAll('table.verdicts tbody tr').length]")
    assert first == [3, 6]  # three candidates side by side; 3 pairs x both orders
    _search(page, "houseplant")
    assert _shown(page) == (["q05"], ["q05"], "1 of 2 prompts")
    _search(page, "zzz no such prompt")
    items, panels, count = _shown(page)
    assert items == [] and panels == [] and count == "0 of 2 prompts"
    assert page.js("return document.getElementById('no-match').offsetParent !== null")
    _search(page, "")
    assert _shown(page)[0] == list(PROMPTS)
    from selenium.webdriver.common.by import By
    page.d.find_element(By.CSS_SELECTOR, "#prompt-list li[data-pid='q05'] button").click()
    assert _shown(page)[1] == ["q05"]
    page.d.find_element(By.CSS_SELECTOR, "#prompt-list li[data-pid='q01'] button").click()
    assert _shown(page)[1] == ["q01"]
    page.collect()


def test_script_in_a_candidate_shows_as_text_and_does_not_run(page):
    _search(page, "__referee_pwned")  # the search sees the candidate's literal text
    items, panels, _ = _shown(page)
    assert items == ["q05"] and panels == ["q05"]
    text = page.js("return Array.from(document.querySelectorAll(\"article[data-pid='q05'] .cand\")).map(c => "
                   "[c.getAttribute('data-system'), c.querySelector('.cand-text').textContent])")
    assert [EVIL_NAME, PAYLOAD] in text
    assert page.js("return [typeof window.__referee_pwned, typeof window.__referee_img]") == ["undefined", "undefined"]
    assert page.js("return document.querySelectorAll('.cand-text *, .cand header b *, td.system i, "
                   "#prompt-panels script, #prompt-panels img').length") == 0
    _search(page, "")
    page.collect()


def test_synthetic_style_toggle_switches_tables_and_draws_its_plot(synthetic):
    s = synthetic
    assert len(_visible_rows(s, "raw")) == 4 and _visible_rows(s, "style") == []
    assert s.js("return document.querySelector(\"[data-plot='forest_style']\").getAttribute('data-rendered')") is None
    s.js("document.querySelector(\".toggle button[data-view='style']\").click()")
    assert _visible_rows(s, "raw") == [] and len(_visible_rows(s, "style")) == 4
    assert s.js("return document.querySelector(\"[data-plot='forest_style'] .main-svg\") !== null")
    s.js("document.querySelector(\".toggle button[data-view='raw']\").click()")
    assert len(_visible_rows(s, "raw")) == 4
    ties = s.js("return Array.from(document.querySelectorAll(\"table.leaderboard[data-kind='raw'] .badge.tie\"))"
                ".map(b => b.closest('tr').getAttribute('data-system'))")
    assert "alpha" in ties and EVIL_SYSTEM in ties
    s.collect()


def test_synthetic_judges_spans_and_full_screenshot(synthetic):
    s = synthetic
    for plot in ("forest_raw", "heatmap", "style_effects"):
        assert s.js(f"return document.querySelector(\"[data-plot='{plot}'] .main-svg\") !== null"), plot
    assert s.js("return document.querySelectorAll('table.agreement tbody tr').length") == 3
    assert s.js("return document.querySelectorAll('table.members tbody tr').length") == 2
    from selenium.webdriver.common.by import By
    s.d.find_element(By.CSS_SELECTOR, "#prompt-list li[data-pid='p01'] button").click()
    marks = s.js("return Array.from(document.querySelectorAll(\"article[data-pid='p01'] mark.span\"))"
                 ".map(m => [m.textContent, m.title])")
    assert marks == [["<img src=x onerror=", "major unsafe: markup <em>injected</em>"]]
    assert s.js("return typeof window.__referee_pwned") == "undefined"
    save_screenshot(s.d, ARTIFACT_FULL)
    s.collect()


def test_no_console_errors(browser_session):
    s = browser_session
    s.collect()
    assert s.opened
    bad = [e for e in s.logs if e.get("level") in ("SEVERE", "WARNING")]
    assert bad == [], bad


def test_no_request_leaves_the_page(browser_session):
    s = browser_session
    s.collect()
    assert set(s.opened) <= set(s.urls)
    outside = [u for u in s.urls if u not in s.opened and not u.startswith("data:")]
    assert outside == [], outside


def test_rank_with_report_off_writes_no_report(report, smol_judge):
    # the same run again is all cache hits: cheap, and it must leave report.html alone when told to
    report.unlink()
    src = report.parent.parent / "candidates.jsonl"
    result = rank(RankOptions(candidates=[src], output=report.parent, n_boot=50, report=False), judge=smol_judge)
    assert result.progress.asked == 0 and result.progress.cache_hits > 0
    assert not report.exists() and (report.parent / "leaderboard.md").is_file()
    assert "report.html" in (report.parent / "leaderboard.md").read_text()
    write_html_report(report.parent)
