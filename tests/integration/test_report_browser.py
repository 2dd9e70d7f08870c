"""`prodgate report build` rendered by a real browser (Debian's headless Chromium): what a person sees
on the pages, with screenshots kept under tests/output/report/ (issue 13).

The register is written through the core writer with the callback's entry builders
(tests/integration/report_world.py); the pages are opened from the file system, as an operator would.
"""
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from report_world import TODAY, ReportWorld

REPO = Path(__file__).resolve().parents[2]
BIN = REPO / ".venv" / "bin"
SHOTS = REPO / "tests" / "output" / "report"


def _chromium():
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        pytest.fail("headless Chromium is needed for the report's browser tests: apt-get install chromium "
                    "fonts-wqy-microhei (scripts/setup.sh installs them)")
    return found


def _browser(tmp, *args):
    cmd = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp}/chromium",
           *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)


def dom(tmp, page):
    proc = _browser(tmp, "--dump-dom", page.as_uri())
    assert proc.returncode == 0 and "<html" in proc.stdout, proc.stderr[-2000:]
    return proc.stdout


def screenshot(tmp, page, name, size="1400,2000"):
    SHOTS.mkdir(parents=True, exist_ok=True)
    out = SHOTS / name
    if out.exists():
        out.unlink()
    proc = _browser(tmp, f"--window-size={size}", f"--screenshot={out}", page.as_uri())
    assert proc.returncode == 0 and out.exists() and out.stat().st_size > 20000, proc.stderr[-2000:]
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return out


class Cells(HTMLParser):
    """Visible text of the calendar's day cells (td[data-date]) and their classes, and table rows."""

    def __init__(self):
        super().__init__()
        self.cells, self.rows = {}, {}
        self._cell = self._row = None
        self._depth = 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "td" and "data-date" in a:
            self._cell = a["data-date"]
            self.cells[self._cell] = {"class": a.get("class") or "", "text": ""}
        if tag == "tr" and "data-system" in a:
            self._row = a["data-system"]
            self.rows[self._row] = {"class": a.get("class") or "", "text": ""}

    def handle_endtag(self, tag):
        if tag == "td" and self._cell:
            self._cell = None
        if tag == "tr" and self._row:
            self._row = None

    def handle_data(self, data):
        if self._cell:
            self.cells[self._cell]["text"] += data
        if self._row:
            self.rows[self._row]["text"] += data


def parse(html):
    p = Cells()
    p.feed(html)
    for bucket in (p.cells, p.rows):
        for v in bucket.values():
            v["text"] = re.sub(r"\s+", " ", v["text"]).strip()
    return p


def _prodgate(env, *args):
    return subprocess.run([str(BIN / "prodgate"), *args], env=env, capture_output=True, text=True, timeout=300,
                          check=False)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("report")
    rw = ReportWorld(tmp).build()
    env = rw.env()
    out = tmp / "site"

    def build():
        proc = _prodgate(env, "report", "build", "--out", str(out), "--policy", rw.world.policy_path, "--evidence",
                         str(rw.evidence), "--records", str(rw.records), "--from", "2025-11", "--to", "2026-01",
                         "--today", TODAY, "--json")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return json.loads(proc.stdout)
    return {"tmp": tmp, "rw": rw, "env": env, "out": out, "build": build, "first": build()}


def test_the_rolled_back_change_is_shown_rolled_back_on_its_day(site):
    page = site["out"] / "index.html"
    cells = parse(dom(site["tmp"], page)).cells
    assert "CHG-UP120 · Rolled back" in cells["2025-12-16"]["text"]
    assert "CHG-UP110 · Completed" in cells["2025-12-15"]["text"]
    assert "CHG-TRIAL · Trial run" in cells["2025-12-17"]["text"]
    assert "CHG-ADHOC · Ungated" in cells["2025-12-18"]["text"]
    assert "20:00 CHG-PLAN" in cells["2025-12-22"]["text"]  # planned by a signed plan submission
    assert "CHG-UP120" not in cells["2025-12-15"]["text"] + cells["2025-12-17"]["text"]
    screenshot(site["tmp"], page, "calendar-all-systems.png", "1400,2600")
    change = site["out"] / "change-CHG-UP120.html"
    html = dom(site["tmp"], change)
    assert re.search(r'id="outcome"[^>]*>Rolled back<', html)
    assert "app1 was switched back to the earlier release" in html
    assert "Status code was 500" in html  # why the health check failed
    assert "ansible-local" not in html and "/tmp/" not in html  # no temporary paths as diff labels
    assert html.count("<pre class=\"diff\">") == 2  # two real diffs; the empty one is gone
    screenshot(site["tmp"], change, "change-rolled-back.png", "1200,1700")


def test_the_year_end_freeze_is_on_the_year_end_days(site):
    cells = parse(dom(site["tmp"], site["out"] / "system-ta-core.html")).cells
    assert "year-end-close 15:00-24:00" in cells["2025-12-31"]["text"]
    for day in ("2026-01-01", "2026-01-02", "2026-01-03", "2026-01-04"):
        assert "frozen" in cells[day]["class"].split() and "year-end-close" in cells[day]["text"], day
    assert "year-end-close 00:00-09:15" in cells["2026-01-05"]["text"]
    assert "year-end-close" not in cells["2025-12-30"]["text"] + cells["2026-01-06"]["text"]
    assert "New Year's Day" in cells["2026-01-01"]["text"] and "make-up day" in cells["2026-01-04"]["text"]
    assert "off" in cells["2025-12-27"]["class"].split() and "trading" not in cells["2025-12-27"]["text"]
    page = dom(site["tmp"], site["out"] / "system-ta-core.html")
    assert 'data-article="13-15"' in page and "no evidence recorded" in page  # Art. 13-15: no code can check it
    # the wiki (it_management) is not under the core_business freezes
    wiki = parse(dom(site["tmp"], site["out"] / "system-wiki.html")).cells
    assert "year-end-close" not in wiki["2026-01-02"]["text"] and "frozen" not in wiki["2026-01-02"]["class"]
    screenshot(site["tmp"], site["out"] / "system-ta-core.html", "calendar-ta-core-year-end.png", "1400,2600")


def test_an_overdue_mlps_filing_is_highlighted_until_a_signed_filing_exists(site):
    rows = parse(dom(site["tmp"], site["out"] / "mlps.html")).rows
    assert "overdue" in rows["ta-core"]["class"] and "OVERDUE by 27 day(s)" in rows["ta-core"]["text"]
    assert "2025-11-03" in rows["ta-core"]["text"] and "2025-12-03" in rows["ta-core"]["text"]
    assert "not live yet" in rows["crm"]["text"] and "wiki" not in rows  # level 2+ only
    index = dom(site["tmp"], site["out"] / "index.html")
    assert "MLPS filing of" in index and "OVERDUE by 27 day(s)" in index
    screenshot(site["tmp"], site["out"] / "mlps.html", "mlps-overdue.png", "1200,700")


def test_failure_analysis_is_open_until_the_it_pm_signs_one(site):
    rw, env = site["rw"], site["env"]
    html = dom(site["tmp"], site["out"] / "change-CHG-UP120.html")
    assert "Open:" in html and "no failure analysis signed by the IT project manager" in html
    # someone who is not the IT PM cannot sign it
    refused = _prodgate(env, "report", "sign", "failure-analysis", "CHG-UP120", "--key", rw.world.write_key("ivan"),
                        "--policy", rw.world.policy_path, "--out", str(rw.records / "fa-ivan.json"), "--cause", "x",
                        "--action", "y", "--owner", "z")
    assert refused.returncode == 1 and "it_pm" in refused.stderr
    signed = _prodgate(env, "report", "sign", "failure-analysis", "CHG-UP120", "--key", rw.world.write_key("paula"),
                       "--policy", rw.world.policy_path, "--out", str(rw.records / "fa-up120.json"),
                       "--cause", "1.2.0 answered 500 on /health: missing DB migration",
                       "--action", "migrations are part of the release bundle check", "--owner", "jane")
    assert signed.returncode == 0, signed.stderr
    filing = _prodgate(env, "report", "sign", "mlps-filing", "ta-core", "--key", rw.world.write_key("rita"),
                       "--policy", rw.world.policy_path, "--out", str(rw.records / "mlps-ta-core.json"),
                       "--filed-on", "2025-12-29", "--reference", "PSB-2025-0815")
    assert filing.returncode == 0, filing.stderr
    handover = _prodgate(env, "report", "sign", "evidence", "ta-core", "--article", "13-15", "--key",
                         rw.world.write_key("paula"), "--policy", rw.world.policy_path, "--out",
                         str(rw.records / "ev-ta-core-13.json"), "--evidence", "vendor handover pack DOC-77 in the archive")
    assert handover.returncode == 0, handover.stderr
    site["build"]()
    assert "vendor handover pack DOC-77" in dom(site["tmp"], site["out"] / "system-ta-core.html")
    html = dom(site["tmp"], site["out"] / "change-CHG-UP120.html")
    assert "Open:" not in html and "missing DB migration" in html and "by paula (IT project manager)" in html
    rows = parse(dom(site["tmp"], site["out"] / "mlps.html")).rows
    assert "filed late" in rows["ta-core"]["text"] and "PSB-2025-0815" in rows["ta-core"]["text"]
    assert "OVERDUE" not in dom(site["tmp"], site["out"] / "index.html")
    screenshot(site["tmp"], site["out"] / "change-CHG-UP120.html", "change-with-failure-analysis.png", "1200,1700")


def test_pages_need_no_network_and_health_shows_the_witness(site):
    for page in site["out"].glob("*.html"):
        text = page.read_text(encoding="utf-8")
        assert not re.search(r'(src|href)="(https?:)?//', text), page.name
    html = dom(site["tmp"], site["out"] / "health.html")
    assert "Verified:" in html and "matches its witness" in html and "witness-" in html
    assert "CHG-ADHOC" in html  # waiting for a retrospective approval
    assert "2026-12-31" in html  # the calendar data's last covered date
    screenshot(site["tmp"], site["out"] / "health.html", "register-health.png", "1200,900")
