"""Headless Chromium for the report tests: the DOM after scripts ran, and every request it tried.

Requests are caught by pointing Chromium at a proxy on 127.0.0.1 that records each connection and
answers none: any http(s) fetch or WebSocket a page attempts passes through the proxy (loopback
included), so an empty record means the page made no network request.

Chromium's own background traffic is switched off by flags (component and extension updates, safe
browsing, metrics, sign-in, variations). Debian's chromium 156 still makes three calls that no
flag silences (an Omaha update check and an account probe, measured 2026-11-29). They are set
apart by their *exact* host, a closed list of the browser's service endpoints: a page fetching
from any other host, Google's CDNs included (fonts.googleapis.com, www.gstatic.com), is caught.
`test_the_instrument_sees_a_page_that_reaches_the_network` proves that.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pytest

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-extensions",
    "--disable-component-extensions-with-background-pages",
    "--safebrowsing-disable-auto-update",
    "--metrics-recording-only",
    "--disable-breakpad",
    "--no-service-autorun",
    "--no-first-run",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
    "--disable-field-trial-config",
    "--no-pings",
    "--no-default-browser-check",
    "--password-store=basic",
    "--disable-features=NetworkTimeServiceQuerying,OptimizationHints,OptimizationHintsFetching,"
    "OptimizationGuideModelDownloading,MediaRouter,Translate,AutofillServerCommunication,"
    "CertificateTransparencyComponentUpdater,InterestFeedContentSuggestions,"
    "PrivacySandboxSettings4,SafeBrowsing,NetworkPrediction,PreconnectToSearch,"
    "DiceWebSigninInterception,GCMUseDedicatedNetworkThread",
    "--dns-prefetch-disable",
    "--disable-signin-frame-for-non-dice",
    "--virtual-time-budget=10000",
)
# Google API keys make Chromium probe its sign-in service; Debian's wrapper exports its own.
NO_API_KEYS = {
    "GOOGLE_API_KEY": "no",
    "GOOGLE_DEFAULT_CLIENT_ID": "no",
    "GOOGLE_DEFAULT_CLIENT_SECRET": "no",
}


def chromium() -> str:
    """The Chromium binary; skipped where it is absent, except in CI where it must be there."""
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed (the CI installs it: see .ci/run)")
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    return binary


@dataclass
class RecordingProxy:
    """A TCP listener that records the first line of every request and closes the connection."""

    requests: list[str] = field(default_factory=list)

    def __enter__(self) -> RecordingProxy:
        self._socket = socket.create_server(("127.0.0.1", 0))
        self.port = self._socket.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()
        return self

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self._socket.accept()
            except OSError:
                return
            with connection:
                connection.settimeout(2)
                try:
                    first = connection.recv(4096).split(b"\r\n", 1)[0]
                except OSError:
                    first = b"<no request line>"
                self.requests.append(first.decode("latin-1"))

    def __exit__(self, *exc: object) -> None:
        self._socket.close()


# The browser's own service endpoints (update checks, sign-in, network time, safe browsing):
# exact hosts, never a suffix, so a page fetching from another Google host is still caught.
BROWSER_SERVICE_HOSTS = frozenset(
    {
        "update.googleapis.com",
        "accounts.google.com",
        "clients2.google.com",
        "clientservices.googleapis.com",
        "safebrowsingohttpgateway.googleapis.com",
        "optimizationguide-pa.googleapis.com",
    }
)


def page_requests(requests: list[str]) -> list[str]:
    """The requests a page made: all but Chromium's calls to its own service endpoints."""
    return [r for r in requests if _host(r) not in BROWSER_SERVICE_HOSTS]


def _host(request_line: str) -> str:
    """The host of a proxy request line ('CONNECT host:443 ...' or 'GET http://host/path ...')."""
    target = request_line.split(" ")[1] if " " in request_line else ""
    return target.split("://")[-1].split("/")[0].split(":")[0]


def dump_dom(
    page: Path, timeout: float = 120, *, action: str = "--dump-dom"
) -> tuple[str, list[str]]:
    """The page's DOM after its scripts ran (or another headless `action`, e.g. a screenshot),
    and the requests it tried to make. Laid out in a 1280-pixel-wide window."""
    with RecordingProxy() as proxy, tempfile.TemporaryDirectory() as profile:
        command = [
            chromium(),
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            f"--proxy-server=http://127.0.0.1:{proxy.port}",
            "--proxy-bypass-list=<-loopback>",
            "--window-size=1280,1600",
            action,
            page.resolve().as_uri(),
        ]
        env = {**os.environ, **NO_API_KEYS}
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout, list(proxy.requests)


ARTIFACTS = Path(__file__).parent / "artifacts"  # screenshots a test keeps (git-ignored)


def screenshot(page: Path, name: str) -> Path:
    """A PNG of the page as Chromium draws it, kept under tests/artifacts/NAME.png."""
    ARTIFACTS.mkdir(exist_ok=True)
    target = ARTIFACTS / f"{name}.png"
    dump_dom(page, action=f"--screenshot={target}")
    assert target.stat().st_size > 10_000, "an empty screenshot"
    return target


# Marks every word in a table cell that the layout split across two lines (a word wrapped
# mid-word), as JSON in <pre id="broken-words">, for `broken_words`.
_FIND_BROKEN_WORDS = """<script>
window.addEventListener("load", () => {
  const broken = [];
  for (const cell of document.querySelectorAll("td")) {
    const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
    for (let node; (node = walker.nextNode()); ) {
      for (const match of node.data.matchAll(/\\S+/g)) {
        const range = document.createRange();
        range.setStart(node, match.index);
        range.setEnd(node, match.index + match[0].length);
        const lines = new Set([...range.getClientRects()].map((r) => Math.round(r.top)));
        if (lines.size > 1) broken.push(match[0]);
      }
    }
  }
  const out = document.createElement("pre");
  out.id = "broken-words";
  out.textContent = JSON.stringify(broken);
  document.body.appendChild(out);
});
</script>"""


def broken_words(page: Path) -> list[str]:
    """The words Chromium wrapped mid-word in the page's tables (laid out 1280 pixels wide)."""
    probe = page.with_name(page.stem + ".probe.html")
    probe.write_text(page.read_text().replace("</body>", _FIND_BROKEN_WORDS + "</body>"))
    dom, _ = dump_dom(probe)
    found = re.search(r'<pre id="broken-words">(.*?)</pre>', dom, re.S)
    assert found, "the probe did not run"
    return json.loads(html.unescape(found[1]))
