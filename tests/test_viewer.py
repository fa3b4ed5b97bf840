"""`condpred serve`: the viewer on real stores (tiny model runs, a hostile run), served by real
uvicorn on 127.0.0.1, read over HTTP and clicked through in headless Chromium (Playwright)."""

from __future__ import annotations

import http.server
import itertools
import json
import math
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn

from condpred import SamplingParams, Store, predict
from condpred.checks.base import CheckResult
from condpred.condition import Conditional
from condpred.elicit import check
from condpred.experiments import tree as trees
from condpred.model.base import Sample
from condpred.model.hf import HFModel
from condpred.store import RunFilter
from condpred.viewer import create_app
from condpred.viewer._render import total_variation, word_diff
from tests.browser import chromium

ARTIFACTS = Path(__file__).parent / "artifacts" / "viewer"
HOSTILE = '<script>window.pwned = 1</script><img src=x onerror="window.pwned = 2">&amp; "q"'


@pytest.fixture(scope="module")
def model(tiny_model_dir) -> HFModel:
    return HFModel.from_pretrained(tiny_model_dir, device="cpu")


@pytest.fixture(scope="module")
def db(model, tmp_path_factory) -> Path:
    """A store with two predict runs of the tiny model (samples, checks) and a hostile run whose
    conditional, sample, tokens and check evidence are HTML and script."""
    path = tmp_path_factory.mktemp("viewer") / "runs.db"
    with Store(path) as store:
        for date in ("2031", "2032"):
            conditional = Conditional(title=f"The alignment paper of {date}", prefix="Abstract.")
            prediction = predict(
                conditional, model, 3, SamplingParams(max_new_tokens=8, seed=0), store=store
            )
            check(prediction, model, ["surprisal", "ai_author"], store=store)
        run = store.create_run("predict", "hostile<b>model</b>", {"note": HOSTILE}, 0)
        store.add_conditional(run, 0, f"title: {HOSTILE}\n", f"Title: {HOSTILE}\n")
        sample = Sample(HOSTILE, [-0.5, -9.0], ["<script>", HOSTILE], "stop")
        store.add_sample(run, 0, sample)
        evidence = {"probe": HOSTILE}
        result = CheckResult("surprisal", 1.0, 2.0, "warn", evidence, 0, HOSTILE)
        store.add_check_results(run, 0, [result])
        store.finish_run(run)
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serving(db: Path, model: HFModel | None = None) -> Iterator[str]:
    """The app under real uvicorn on 127.0.0.1 and a free port, answering only that host."""
    port = _free_port()
    app = create_app(db, model, hosts={f"127.0.0.1:{port}"})
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@contextmanager
def _page_server(html: str) -> Iterator[str]:
    """Another origin on this machine (localhost on its own port) serving one page."""

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("content-type", "text/html")
            self.end_headers()
            self.wfile.write(html.encode())

        def log_message(self, *args: object) -> None:
            pass

    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            yield f"http://localhost:{server.server_address[1]}/"
        finally:
            server.shutdown()


@pytest.fixture(scope="module")
def read_only(db) -> Iterator[str]:
    with serving(db) as url:
        yield url


@pytest.fixture(scope="module")
def writable(db, model) -> Iterator[str]:
    with serving(db, model) as url:
        yield url


def _ids(db: Path) -> dict[str, str]:
    with Store(db) as store:
        runs = store.list_runs(None)
    return {r.model_spec: r.id for r in runs if r.kind == "predict"} | {
        "first": [r.id for r in runs if r.kind == "predict"][-1]
    }


def test_every_stored_text_is_escaped_and_no_page_runs_inline_script(db, read_only):
    hostile = _ids(db)["hostile<b>model</b>"]
    for path in (f"/runs/{hostile}", f"/runs/{hostile}/conditionals/0"):
        response = httpx.get(read_only + path)
        assert response.status_code == 200, path
        assert "<script>window" not in response.text and "<img src=x" not in response.text
        assert "&lt;script&gt;window.pwned = 1&lt;/script&gt;" in response.text
        assert "script-src 'self'" in response.headers["content-security-policy"]
    listed = httpx.get(read_only + "/?q=hostile").text
    assert "hostile&lt;b&gt;model&lt;/b&gt;" in listed and "<b>model" not in listed
    page = httpx.get(f"{read_only}/runs/{hostile}").text
    assert "hostile&lt;b&gt;model&lt;/b&gt;" in page  # the model spec, in the facts
    assert "&lt;img src=x onerror=" in page  # a token's text, in its span and its title


def test_runs_list_filters_and_pages_in_sql(tmp_path):
    with Store(tmp_path / "many.db") as store:
        made = [
            store.create_run("predict" if i % 3 else "score", f"model-{i % 2}", {"i": i}, i)
            for i in range(130)
        ]
        for run_id in made[:40]:
            store.finish_run(run_id)
        found, total = store.find_runs(RunFilter(kind="score"), limit=20, offset=20)
        assert total == 44 and len(found) == 20
        expected_scores = [r for i, r in reversed(list(enumerate(made))) if i % 3 == 0]
        assert [r.id for r in found] == expected_scores[20:40]
        assert store.find_runs(RunFilter(model="model-1"), limit=None)[1] == 65
        assert store.find_runs(RunFilter(status="done"), limit=1)[1] == 40
        assert store.find_runs(RunFilter(text=made[7]), limit=None)[0][0].id == made[7]
        today = store.get_run(made[0]).created_at[:10]
        assert store.find_runs(RunFilter(since=today, until=today), limit=1)[1] == 130
        assert store.find_runs(RunFilter(until="2000-01-01"), limit=1)[1] == 0
    with serving(tmp_path / "many.db") as url:
        page = httpx.get(f"{url}/?kind=score").text
        assert "44 found" in page and page.count('class="run-link"') == 44
        last = httpx.get(f"{url}/?page=3").text
        assert "page 3 of 3" in last and last.count('class="run-link"') == 30
        assert made[0] in last and made[30] not in last
        assert httpx.get(f"{url}/?page=x").status_code == 400


def test_store_pages_samples_rows_and_check_results_in_sql(tmp_path):
    with Store(tmp_path / "pages.db") as store:
        run = store.create_run("predict", "m", {}, 0)
        for cond in (0, 1):
            store.add_conditional(run, cond, "title: x\n", f"text {cond}")
            for i in range(7):
                store.add_sample(run, cond, Sample(f"{cond}.{i}", [-1.0], ["x"], "eos", i))
            findings = [CheckResult("c", 0.0, None, "pass", {}, i, f"{cond}.{i}") for i in range(7)]
            findings.append(CheckResult("c", 0.0, None, "warn", {}, None, f"{cond} whole"))
            store.add_check_results(run, cond, findings)
        page = store.sample_page(run, offset=5, limit=4)
        assert [(c, s.text) for c, s in page] == [(0, "0.5"), (0, "0.6"), (1, "1.0"), (1, "1.1")]
        assert [s.text for _, s in store.sample_page(run, 1, offset=6, limit=4)] == ["1.6"]
        assert store.count_samples(run) == 14 and store.count_samples(run, 1) == 7
        some = store.check_results(run, 1, samples=[None, 2, 4])
        assert [r.message for r in some] == ["1.2", "1.4", "1 whole"]
        assert store.check_results(run, 0, samples=[]) == []


def test_a_run_page_shows_its_rows_samples_shading_and_check_badges(db, read_only):
    run_id = _ids(db)["first"]
    page = httpx.get(f"{read_only}/runs/{run_id}").text
    assert page.count('class="sample"') == 3
    assert page.count('class="badge verdict-') >= 3  # the surprisal check on each sample
    with Store(db) as store:
        sample = store.samples(run_id)[0]
    bits = -sample.token_logprobs[0] / math.log(2)
    assert f"{bits:.2f} bits" in page  # the first token's hover shows its surprisal
    assert "the full report" in page
    report = httpx.get(f"{read_only}/runs/{run_id}/report")
    assert "sandbox" in report.headers["content-security-policy"]


def test_item_rows_render_from_the_kinds_row_model_a_page_at_a_time(tmp_path, model):
    db = tmp_path / "tree.db"
    with Store(db) as store:
        source = store.create_run("predict", "m", {}, 0)
        store.add_conditional(source, 0, "title: x\n", "Abstract.")
        for i in range(120):  # a table no registered kind reads: its stored keys are the columns
            store.add_item(source, "custom", i, {"index": i, "html": f"<b>{i}</b>"})
        store.finish_run(source)
        tree_id = trees.start_tree(store, model.spec, source)
        trees.mark(store, tree_id, 0, True, "<i>look</i>")
    with serving(db) as url:
        page = httpx.get(f"{url}/trees/{tree_id}").text
        assert "1 nodes" in page and "★ marked" in page
        rows = httpx.get(f"{url}/runs/{tree_id}").text  # a kind's rows through its Row model
        marks = rows.split('data-table="tree_mark"')[1].split("</table>")[0]
        columns = ["index", "node", "marked", "note"]
        assert marks.count("<th>") == 4 and all(f"<th>{c}</th>" in marks for c in columns)
        assert "&lt;i&gt;look&lt;/i&gt;" in marks and "<i>" not in marks
        last = httpx.get(f"{url}/runs/{source}", params={"t.custom": 3}).text
        assert "page 3 of 3" in last and last.count("&lt;b&gt;") == 20
        assert "<td>100</td>" in last and "<td>119</td>" in last and "<td>99</td>" not in last


def test_writes_need_the_model_the_token_and_the_same_origin(db, read_only, writable):
    run_id = _ids(db)["first"]
    body = {"run": run_id, "cond": 0}
    refused = httpx.post(f"{read_only}/api/trees", json=body)
    assert refused.status_code == 403 and "read-only" in refused.json()["error"]
    page = httpx.get(f"{writable}/runs/{run_id}/conditionals/0").text
    token = page.split('name="condpred-token" content="')[1].split('"')[0]
    assert httpx.post(f"{writable}/api/trees", json=body).status_code == 403  # no token
    evil = {"x-condpred-token": token, "origin": "http://evil.example"}
    assert httpx.post(f"{writable}/api/trees", json=body, headers=evil).status_code == 403
    rebound = {"x-condpred-token": token, "host": "evil.example"}
    assert httpx.post(f"{writable}/api/trees", json=body, headers=rebound).status_code == 421
    same = {"x-condpred-token": token, "origin": writable}
    made = httpx.post(f"{writable}/api/trees", json=body, headers=same)
    assert made.status_code == 200, made.text
    bad = httpx.post(
        f"{writable}/api/trees/{made.json()['tree']}/sample",
        json={"node": 0, "n": "many"},
        headers=same,
    )
    assert bad.status_code == 400 and "'n'" in bad.json()["error"]


def test_a_tree_is_a_reproducible_record(db, model):
    run_id = _ids(db)["first"]
    with Store(db) as store:
        sample = store.samples(run_id)[1]
        tree_id = trees.start_tree(store, model.spec, run_id, 0, sample_index=1)
        nodes = trees.nodes(store, tree_id)
        assert nodes[1].tokens == sample.tokens and nodes[1].how == "stored"
        rendered = store.conditionals(run_id)[0].rendered
        assert trees.context_of(nodes, 1, 2) == rendered + "".join(sample.tokens[:2])
        params = SamplingParams(max_new_tokens=6, seed=5)
        first = trees.sample_children(store, model, tree_id, 1, 2, 2, params)
        again = trees.sample_children(store, model, tree_id, 1, 2, 1, params)
        assert [n.sample_index for n in first + again] == [0, 1, 2]  # new indices, not repeats
        top = trees.next_tokens(store, model, tree_id, 1, 2, top_k=5)
        assert all(a.prob >= b.prob for a, b in itertools.pairwise(top))
        picked = trees.pick_token(store, model, tree_id, 1, 2, top[3].token_id, top_k=5)
        assert picked.token_logprobs == [top[3].logprob] and picked.params["rank"] == 3
        trees.mark(store, tree_id, first[0].index, True, "interesting")
        trees.mark(store, tree_id, first[0].index, False)
        record = json.loads(json.dumps(trees.export_tree(store, tree_id)))
    by_index = {n["index"]: n for n in record["nodes"]}
    assert not by_index[first[0].index]["marked"]  # the latest mark wins
    # Every sampled child is drawn again from its stored provenance alone.
    context = rendered + "".join(sample.tokens[:2])
    for node in first + again:
        stored = by_index[node.index]
        redo = model.sample(
            context, 1, SamplingParams(**{**stored["params"], "stop": ()}),
            start=stored["sample_index"],
        )[0]  # fmt: skip
        assert redo.tokens == stored["tokens"] and redo.token_logprobs == pytest.approx(
            stored["token_logprobs"]
        )


def test_the_diff_and_distance_on_known_answers():
    a, b = word_diff("The paper of 2031 was cited.", "The paper of 2032 was cited.")
    assert ("del", "2031") in a and ("ins", "2032") in b
    assert "".join(p for _, p in a) == "The paper of 2031 was cited."
    assert total_variation({"x": 0.5, "y": 0.5}, {"x": 0.5, "y": 0.5}) == 0
    assert total_variation({"x": 1.0}, {"y": 1.0}) == 1
    assert total_variation({"x": 0.7, "y": 0.3}, {"x": 0.4, "y": 0.6}) == pytest.approx(0.3)


def test_two_conditionals_side_by_side(db, writable):
    first = _ids(db)["first"]
    with Store(db) as store:
        second = [r.id for r in store.list_runs(None, kind="predict")][1]
    page = httpx.get(f"{writable}/compare", params={"a": f"{first}/0", "b": f"{second}/0"}).text
    assert "<del>2031</del>" in page and "<ins>2032</ins>" in page
    assert page.count('class="dist next-tokens"') == 2  # both exact distributions
    missing = httpx.get(f"{writable}/compare", params={"a": f"{first}/0"})
    assert missing.status_code == 400 and "b= is missing" in missing.text


def test_the_distribution_shown_is_the_models_exact_one(db, model, writable):
    """Known answer: each top token's probability as the viewer serves it equals exp of that
    token's log-probability scored as a continuation (a different code path: `score`)."""
    with Store(db) as store:
        tree_id = trees.start_tree(store, model.spec, _ids(db)["first"])
        context = trees.context_of(trees.nodes(store, tree_id), 0)
    served = httpx.get(f"{writable}/api/trees/{tree_id}/next", params={"node": 0, "top_k": 20})
    tokens = served.json()["tokens"]
    assert len(tokens) == 20 and sum(t["prob"] for t in tokens) <= 1 + 1e-9
    scored = model.score(context, [t["token"] for t in tokens])
    compared = [(t, s) for t, s in zip(tokens, scored, strict=True) if s.tokens == [t["token"]]]
    assert len(compared) >= 15  # tokens that tokenize back to themselves
    for token, score in compared:
        assert score.logprob == pytest.approx(token["logprob"], abs=1e-4)
        assert token["prob"] == pytest.approx(math.exp(score.logprob), rel=1e-4)


def test_serve_prints_its_address_and_serves_it(db):
    env = {
        **os.environ,
        "PYTHONPATH": str(Path(__file__).parents[1] / "src"),
        "PYTHONUNBUFFERED": "1",
    }
    port = _free_port()
    command = [sys.executable, "-m", "condpred", "serve", "--db", str(db), "--port", str(port)]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        line = server.stdout.readline().decode()
        assert f"http://127.0.0.1:{port}/" in line, line
        deadline = time.monotonic() + 30
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/")
                break
            except httpx.ConnectError:
                assert time.monotonic() < deadline
                time.sleep(0.1)
        assert response.status_code == 200 and _ids(db)["first"] in response.text
        assert 'name="condpred-token"' not in response.text  # read-only: no write token
        other = httpx.get(f"http://127.0.0.1:{port}/", headers={"host": f"evil.example:{port}"})
        assert other.status_code == 421  # a DNS-rebound name is not this server
    finally:
        server.terminate()
        server.wait(10)


def test_serve_refuses_a_missing_store_clearly(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    done = subprocess.run(
        [sys.executable, "-m", "condpred", "serve", "--db", str(tmp_path / "none.db")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 2 and "no run store here" in done.stderr
    assert "Traceback" not in done.stderr


def test_clicking_through_in_a_real_browser(db, writable):
    """Chromium (Playwright) opens the runs list, a run, a conditional, starts a tree, branches
    a node on the tiny model, samples, picks and marks; the hostile page runs no script.
    Screenshots go to tests/artifacts/viewer/."""
    sync_api = pytest.importorskip("playwright.sync_api")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    hostile = _ids(db)["hostile<b>model</b>"]
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        dialogs: list[str] = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.goto(writable + "/")
        page.screenshot(path=ARTIFACTS / "runs.png", full_page=True)
        page.get_by_text(_ids(db)["first"]).click()
        page.wait_for_selector(".sample")
        page.screenshot(path=ARTIFACTS / "run.png", full_page=True)
        page.click("a.cond-link")
        page.click("button.start-tree:not([data-sample])")
        page.wait_for_url("**/trees/*")
        page.click(".branch-end[data-node='0']")
        page.wait_for_selector("#next-tokens tbody tr:nth-child(10)")
        cells = page.locator("#next-tokens tbody td:nth-child(2)").all_inner_texts()
        probs = [float(cell) for cell in cells]
        assert len(probs) == 10 and 0 < sum(probs) <= 1.0001
        page.fill("input[name=n]", "2")
        page.fill("input[name=max_new_tokens]", "6")
        page.click("#sample-button")
        page.wait_for_selector("#node-2")
        page.click("#node-1 .tok[data-at='2']")  # branch before the third token of a child
        page.wait_for_selector("#next-tokens tbody tr:nth-child(10)")
        page.click("#next-tokens tbody tr:nth-child(2) button.pick")
        page.wait_for_selector("#node-3")
        assert page.locator("#node-3 .where").inner_text() == "after 2 tokens of #1"
        page.click("#node-3 .branch-end")
        page.click("#mark-button")
        page.wait_for_selector("#node-3.marked")
        page.screenshot(path=ARTIFACTS / "tree.png", full_page=True)
        tree_url = page.url.split("#")[0]
        exported = page.request.get(tree_url + "/export.json").json()
        assert [n["index"] for n in exported["nodes"]] == [0, 1, 2, 3]
        assert exported["nodes"][3]["how"] == "pick" and exported["nodes"][3]["marked"]
        page.goto(f"{writable}/runs/{hostile}")
        page.wait_for_selector(".sample")
        assert page.evaluate("window.pwned") is None and dialogs == []
        assert "<script>window.pwned = 1</script>" in page.inner_text(".sample .text")
        page.screenshot(path=ARTIFACTS / "hostile.png", full_page=True)
        # Another site's page (on this machine, so the browser lets it reach loopback) posting
        # to the viewer as a simple request (no preflight) writes nothing: it has no token, and
        # its Origin is not the viewer's.
        with Store(db) as store:
            before = len(store.list_runs(None, kind="tree"))
        script = (
            f"fetch({json.dumps(writable + '/api/trees')}, {{method: 'POST', mode: 'no-cors', "
            f"headers: {{'content-type': 'text/plain'}}, body: "
            f"{json.dumps(json.dumps({'run': _ids(db)['first'], 'cond': 0}))}}})"
            ".then(() => document.title = 'sent', () => document.title = 'failed')"
        )
        with _page_server(f"<script>{script}</script>") as evil_url:
            evil = browser.new_page()
            evil.goto(evil_url)
            evil.wait_for_function("document.title !== ''")
            assert evil.title() == "sent"  # it reached the viewer...
        with Store(db) as store:
            assert len(store.list_runs(None, kind="tree")) == before  # ...which refused it
        browser.close()
    print(f"screenshots in {ARTIFACTS}")
