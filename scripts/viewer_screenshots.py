"""The README's screenshots of `condpred serve`, on the embedded model: two predict runs of the
same conditional at two dates (with checks), then the viewer clicked through in headless
Chromium (Playwright): a run's samples, the two conditionals side by side, and a tree grown
from a sample. Everything goes through the library and the app, as a user's session would.

    nice -n 10 python scripts/viewer_screenshots.py [DB] [docs/]
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import uvicorn
from playwright.sync_api import sync_playwright

from condpred import SamplingParams, Store, load_conditional, load_model, predict
from condpred.elicit import check
from condpred.viewer import create_app

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "alignment-paper-2031.yaml"


def main(db: Path, out: Path) -> None:
    model = load_model("default", device="cpu")
    with Store(db) as store:
        if not store.list_runs(1):
            base = load_conditional(EXAMPLE)
            for date in (base.date, base.date.replace(year=base.date.year + 4)):
                conditional = base.model_copy(update={"date": date})
                params = SamplingParams(max_new_tokens=40, seed=0)
                prediction = predict(conditional, model, 4, params, store=store)
                check(prediction, model, ["surprisal", "ai_author"], store=store)
        first, second = (r.id for r in reversed(store.list_runs(2, kind="predict")))
    app = create_app(db, model)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=8765, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    url = "http://127.0.0.1:8765"
    out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(f"{url}/runs/{first}")
        page.locator(".samples").scroll_into_view_if_needed()
        page.screenshot(path=out / "viewer-samples.png")
        page.goto(f"{url}/compare?a={first}/0&b={second}/0")
        page.screenshot(path=out / "viewer-compare.png", full_page=True)
        page.goto(f"{url}/runs/{first}")
        page.click("button.start-tree[data-sample='0']")
        page.wait_for_url("**/trees/*")
        page.click("#node-1 .tok[data-at='6']")
        page.wait_for_selector("#next-tokens tbody tr:nth-child(10)")
        page.fill("input[name=max_new_tokens]", "24")
        page.click("#sample-button")
        page.wait_for_selector("#node-4", timeout=300_000)
        page.wait_for_selector("#next-tokens tbody tr:nth-child(10)")
        page.screenshot(path=out / "viewer-tree.png", full_page=True)
        browser.close()
    server.should_exit = True


if __name__ == "__main__":
    main(
        Path(sys.argv[1]) if len(sys.argv) > 1 else Path("/tmp/condpred-viewer-demo.db"),
        Path(sys.argv[2]) if len(sys.argv) > 2 else Path(__file__).resolve().parents[1] / "docs",
    )
