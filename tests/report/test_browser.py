"""The HTML report in a real browser: headless Chromium driven over the DevTools protocol.

Checks: no console errors or exceptions, every figure renders with a non-zero size, and
the page makes no network request (everything is inline). `.ci/run` installs Debian's
chromium; where it is missing the test is skipped with that reason.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from tests.report.test_report import CLAIMS, CONTRASTS, make_inputs, run_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed "
                                "(apt-get install chromium; .ci/run does this)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class DevTools:
    """A minimal DevTools-protocol client: send commands, collect events."""

    def __init__(self, ws_url: str):
        import websocket

        self.ws = websocket.create_connection(ws_url, timeout=30)
        self.next_id = 0
        self.events: list[dict] = []

    def call(self, method: str, **params: object) -> dict:
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise RuntimeError(msg["error"])
                return msg.get("result", {})
            self.events.append(msg)

    def drain(self, seconds: float) -> None:
        end = time.time() + seconds
        self.ws.settimeout(0.2)
        while time.time() < end:
            try:
                self.events.append(json.loads(self.ws.recv()))
            except Exception:  # timeout: nothing more to read
                continue
        self.ws.settimeout(30)


@pytest.fixture
def browser():
    port = _free_port()
    profile = tempfile.mkdtemp(prefix="trialmeta-chromium-")
    proc = subprocess.Popen(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={profile}", f"--remote-debugging-port={port}",
         "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list") as r:
                    pages = [p for p in json.load(r) if p["type"] == "page"]
                if pages:
                    break
            except OSError:
                pass
            if time.time() > deadline:
                raise RuntimeError("chromium did not start")
            time.sleep(0.2)
        yield DevTools(pages[0]["webSocketDebuggerUrl"])
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(profile, ignore_errors=True)


def test_report_renders_cleanly_offline(tmp_path: Path, browser: DevTools) -> None:
    data, claims = make_inputs(tmp_path)
    claims.write_text(CLAIMS + CONTRASTS)
    out = tmp_path / "rep"
    run_report(data, claims, out)
    for domain in ("Runtime", "Log", "Network", "Page"):
        browser.call(f"{domain}.enable")
    browser.call("Page.navigate", url=(out / "index.html").resolve().as_uri())
    browser.drain(3.0)
    sizes = browser.call("Runtime.evaluate", returnByValue=True, expression=(
        "Array.from(document.querySelectorAll('figure svg')).map(s => {"
        "const r = s.getBoundingClientRect(); return [r.width, r.height]; })"))
    sizes = sizes["result"]["value"]
    assert sizes, "no figures in the page"
    assert all(w > 0 and h > 0 for w, h in sizes), sizes
    errors = [e for e in browser.events if e.get("method") == "Runtime.exceptionThrown"
              or (e.get("method") == "Runtime.consoleAPICalled"
                  and e["params"]["type"] == "error")
              or (e.get("method") == "Log.entryAdded"
                  and e["params"]["entry"]["level"] == "error")]
    assert errors == []
    requests = [e["params"]["request"]["url"] for e in browser.events
                if e.get("method") == "Network.requestWillBeSent"]
    external = [u for u in requests if not u.startswith(("file:", "data:", "about:"))]
    assert external == []


#: what the layout check measures in the page: tables wider than the window, cells whose
#: content overflows them, and cells of a row that overlap their neighbour
LAYOUT_JS = """(() => {
  const W = document.documentElement.clientWidth, out = [];
  document.querySelectorAll('table').forEach((t, i) => {
    const r = t.getBoundingClientRect();
    if (r.right > W + 1 || r.left < -1) out.push(`table ${i} spans ${r.left}-${r.right} > ${W}`);
    t.querySelectorAll('tr').forEach(tr => {
      const cells = Array.from(tr.children);
      cells.forEach((c, j) => {
        if (c.scrollWidth > c.clientWidth + 1)
          out.push(`table ${i} cell '${c.textContent.slice(0, 30)}' overflows`);
        const n = cells[j + 1];
        if (n && c.getBoundingClientRect().right > n.getBoundingClientRect().left + 1)
          out.push(`table ${i} cell '${c.textContent.slice(0, 30)}' overlaps the next`);
      });
    });
  });
  const nav = document.querySelector('nav#contents');
  const links = nav ? Array.from(nav.querySelectorAll('a')) : [];
  const missing = links.filter(a => !document.getElementById(a.hash.slice(1)));
  if (!nav || links.length < 5) out.push('no table of contents');
  missing.forEach(a => out.push(`contents link ${a.hash} has no target`));
  document.querySelectorAll('table.claims td[data-field="verdict"], '
                            + 'table.claims td[data-field="certainty"]').forEach(c => {
    const r = c.getBoundingClientRect();
    if (r.right > W || r.width < 20) out.push(`verdict/certainty cell not visible: ${r.right}`);
  });
  return out;
})()"""


@pytest.mark.parametrize("width", [1024, 1400])
def test_bundled_report_fits_the_window(bundled_report: Path, browser: DevTools,
                                        width: int) -> None:
    """The user trial: at 1024 px the claims table was wider than the page and the Verdict
    column was cut off; the published-results table overlapped itself at 1400 px; a
    37,000-px page had no table of contents."""
    browser.call("Emulation.setDeviceMetricsOverride", width=width, height=900,
                 deviceScaleFactor=1, mobile=False)
    browser.call("Page.enable")
    browser.call("Page.navigate", url=(bundled_report / "index.html").resolve().as_uri())
    browser.drain(3.0)
    found = browser.call("Runtime.evaluate", returnByValue=True, expression=LAYOUT_JS)
    problems = found["result"]["value"]
    assert problems == [], problems[:20]
