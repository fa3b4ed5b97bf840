"""The viewer's web app: Starlette routes over the run store, rendered by Jinja2 templates.

Reading never writes a run. Writing (growing a continuation tree) exists only when the app was
given a model, goes through `condpred.experiments.tree` (the library, never SQL of its own), and
is refused unless the request carries this server's token and comes from its own origin: a page
of another site cannot read the token (same-origin policy), cannot send the header without a
CORS preflight the app never grants, and a DNS-rebinding host is refused by the Host check.
Every page is sent with a Content-Security-Policy that allows only the app's own script and
stylesheet, so even text that escaped escaping could not run.
"""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from condpred.errors import InputError
from condpred.experiments import tree as trees
from condpred.experiments.runner import EXPERIMENTS, read_rows
from condpred.model.base import PredictiveModel, SamplingParams
from condpred.report.html import build_report
from condpred.report.sections import SECTIONS
from condpred.store import RunFilter, Store
from condpred.viewer import _render

PAGE = 50  # runs per page
SAMPLES_PAGE = 20
ITEMS_PAGE = 50
SECTION_ROWS = 2000  # the most samples + rows a run page summarises inline
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
# A stored report is a self-contained page with inline plotly: it runs sandboxed (an opaque
# origin, so it can call nothing of the app's) and may reach nothing outside itself.
REPORT_CSP = (
    "sandbox allow-scripts; default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval'; "
    "style-src 'unsafe-inline'; img-src data: blob:; font-src data:"
)
TOKEN_HEADER = "x-condpred-token"


@dataclass
class Viewer:
    """What the app serves from: the store's path, the model (None: read-only), the hosts it
    answers to and its write token."""

    db: Path
    model: PredictiveModel | None = None
    hosts: frozenset[str] = frozenset()
    token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    _local: threading.local = field(default_factory=threading.local)
    _model_lock: threading.Lock = field(default_factory=threading.Lock)

    def store(self) -> Store:
        """This thread's connection to the store (SQLite connections stay in their thread)."""
        if getattr(self._local, "store", None) is None:
            self._local.store = Store(self.db, create=False)
        return self._local.store


def create_app(
    db: str | Path,
    model: PredictiveModel | None = None,
    *,
    hosts: set[str] | frozenset[str] = frozenset(),
) -> Starlette:
    """The viewer over the store at `db`; with a model, trees can grow. `hosts`: the Host
    headers it answers to (host:port, as the browser sends it); empty answers any (tests)."""
    viewer = Viewer(Path(db), model, frozenset(hosts))
    Store(viewer.db, create=False).close()  # a missing or foreign file fails now, clearly
    env = Environment(
        loader=PackageLoader("condpred.viewer", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
    )
    env.globals.update(viewer=viewer, json=json)

    def page(name: str, request: Request, status: int = 200, **context: Any) -> HTMLResponse:
        html = env.get_template(name).render(request=request, **context)
        return HTMLResponse(html, status_code=status)

    def route(path: str, methods: tuple[str, ...] = ("GET",)) -> Callable:
        def wrap(fn: Callable[[Request], Any]) -> Route:
            async def endpoint(request: Request) -> Response:
                refusal = _refuse(viewer, request)
                if refusal is not None:
                    return refusal
                if request.method == "POST":  # read here: the endpoint runs in a worker thread
                    request.scope["condpred.body"] = await request.body()
                try:
                    return await run_in_threadpool(fn, request)
                except InputError as error:
                    if request.url.path.startswith("/api/"):
                        return JSONResponse({"error": str(error)}, status_code=400)
                    return page("error.html.j2", request, 400, message=str(error))

            return Route(path, endpoint, methods=list(methods))

        return wrap

    routes = _routes(viewer, page, route)
    static = StaticFiles(packages=[("condpred.viewer", "static")])
    app = Starlette(routes=[*routes, Mount("/static", static, name="static")])
    app.add_middleware(_SecurityHeaders)
    app.state.viewer = viewer
    return app


def _refuse(viewer: Viewer, request: Request) -> Response | None:
    """Why a request is refused (None: it is not): an unknown Host (DNS rebinding), a write on
    a read-only server, or a write without this server's token or from another origin."""
    host = request.headers.get("host", "")
    if viewer.hosts and host not in viewer.hosts:
        return JSONResponse({"error": f"unknown host {host!r}"}, status_code=421)
    if request.method in ("GET", "HEAD"):
        return None
    if viewer.model is None:
        return JSONResponse(
            {"error": "this viewer is read-only: start it with --model to grow trees"},
            status_code=403,
        )
    origin = request.headers.get("origin")
    if origin is not None and origin != f"{request.url.scheme}://{host}":
        return JSONResponse({"error": f"cross-site request from {origin}"}, status_code=403)
    if not secrets.compare_digest(request.headers.get(TOKEN_HEADER, ""), viewer.token):
        return JSONResponse({"error": "missing or wrong token"}, status_code=403)
    return None


class _SecurityHeaders:
    """Every response: the CSP (the report's own sandboxed one), no sniffing, no referrer."""

    def __init__(self, app: Callable[..., Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        report = scope["path"].endswith("/report")

        async def send_with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                policy = REPORT_CSP if report else CSP
                headers += [
                    (b"content-security-policy", policy.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"),
                    (b"x-frame-options", b"DENY"),
                ]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _int(request: Request, name: str, default: int | None = None, low: int = 0) -> int | None:
    """An integer query parameter, refused clearly when it is not one."""
    raw = request.query_params.get(name, "")
    if raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InputError(f"{name}={raw!r} is not a whole number", source="the address") from None
    if value < low:
        raise InputError(f"{name}={value} is below {low}", source="the address")
    return value


def _routes(viewer: Viewer, page: Callable, route: Callable) -> list[Route]:
    """Every page and API call, closed over the viewer."""

    @route("/")
    def runs(request: Request) -> Response:
        q = request.query_params
        where = RunFilter(
            kind=q.get("kind") or None,
            status=q.get("status") or None,
            model=q.get("model") or None,
            text=q.get("q") or None,
            since=q.get("since") or None,
            until=q.get("until") or None,
        )
        number = _int(request, "page", 1, low=1)
        store = viewer.store()
        found, total = store.find_runs(where, limit=PAGE, offset=(number - 1) * PAGE)
        return page(
            "runs.html.j2",
            request,
            runs=found,
            total=total,
            page=number,
            pages=max(1, -(-total // PAGE)),
            where=where,
            kinds=store.run_kinds(),
            query={k: v for k, v in q.items() if k != "page"},
        )

    @route("/runs/{run_id}")
    def run(request: Request) -> Response:
        store = viewer.store()
        record = store.get_run(request.path_params["run_id"])
        samples_page = _int(request, "samples", 1, low=1)
        n_samples = store.count_samples(record.id)
        samples = store.sample_page(
            record.id, offset=(samples_page - 1) * SAMPLES_PAGE, limit=SAMPLES_PAGE
        )
        conditionals = store.conditionals(record.id)[:200]
        tables = _item_tables(store, record, request)
        findings = {  # what the checks found about each conditional as a whole
            c.index: _render.badges(store.check_results(record.id, c.index, samples=[None]))
            for c in conditionals
        }
        return page(
            "run.html.j2",
            request,
            run=record,
            conditionals=conditionals,
            conditional_badges=findings,
            samples=_sample_views(store, record.id, samples),
            n_samples=n_samples,
            samples_page=samples_page,
            samples_pages=max(1, -(-n_samples // SAMPLES_PAGE)),
            scores=store.scores(record.id)[:100],
            tables=tables,
            blocks=_section_blocks(store, record, n_samples + sum(t["count"] for t in tables)),
        )

    @route("/runs/{run_id}/report")
    def report(request: Request) -> Response:
        return HTMLResponse(build_report(viewer.store(), request.path_params["run_id"]))

    @route("/runs/{run_id}/conditionals/{index:int}")
    def conditional(request: Request) -> Response:
        store = viewer.store()
        record = store.get_run(request.path_params["run_id"])
        index = request.path_params["index"]
        found = [c for c in store.conditionals(record.id) if c.index == index]
        if not found:
            raise InputError(f"run {record.id} has no conditional {index}")
        number = _int(request, "samples", 1, low=1)
        n_samples = store.count_samples(record.id, index)
        rows = store.sample_page(
            record.id, index, offset=(number - 1) * SAMPLES_PAGE, limit=SAMPLES_PAGE
        )
        conditional_checks = _render.badges(store.check_results(record.id, index, samples=[None]))
        return page(
            "conditional.html.j2",
            request,
            run=record,
            conditional=found[0],
            checks=conditional_checks.get(None, []),
            samples=_sample_views(store, record.id, rows),
            n_samples=n_samples,
            samples_page=number,
            samples_pages=max(1, -(-n_samples // SAMPLES_PAGE)),
        )

    @route("/compare")
    def compare(request: Request) -> Response:
        store = viewer.store()
        if not request.query_params:
            return page("compare_form.html.j2", request)
        sides = [_side(store, request.query_params.get(name, ""), name) for name in ("a", "b")]
        diff_a, diff_b = _render.word_diff(sides[0]["rendered"], sides[1]["rendered"])
        words = [s["summary"]["first_words"] for s in sides]
        top_k = _int(request, "top_k", 10, low=1) or 10
        next_tokens = None
        if viewer.model is not None:
            with viewer._model_lock:
                next_tokens = [
                    viewer.model.next_token(s["rendered"], min(top_k, trees.MAX_TOP_K))
                    for s in sides
                ]
        return page(
            "compare.html.j2",
            request,
            sides=sides,
            diffs=(diff_a, diff_b),
            first_words=_render.by_larger_share(*words),
            words_tv=_render.total_variation(*words) if all(words) else None,
            next_tokens=next_tokens,
            top_k=top_k,
        )

    @route("/trees/{run_id}")
    def tree(request: Request) -> Response:
        store = viewer.store()
        record = store.get_run(request.path_params["run_id"])
        nodes = trees.nodes(store, record.id)
        children: dict[int | None, list[int]] = {}
        for node in nodes.values():
            children.setdefault(node.parent, []).append(node.index)
        return page(
            "tree.html.j2",
            request,
            run=record,
            nodes=nodes,
            children=children,
            marks=trees.marks(store, record.id),
            shaded={i: _render.shaded(n.tokens, n.token_logprobs) for i, n in nodes.items()},
        )

    @route("/trees/{run_id}/export.json")
    def export(request: Request) -> Response:
        record = viewer.store().get_run(request.path_params["run_id"])
        body = trees.export_tree(viewer.store(), record.id)
        disposition = f'attachment; filename="tree-{record.id}.json"'
        return JSONResponse(body, headers={"content-disposition": disposition})

    @route("/api/trees/{run_id}/next")
    def next_token(request: Request) -> Response:
        model = _needs_model(viewer)
        node = _int(request, "node", 0)
        at = _int(request, "at")
        top_k = _int(request, "top_k", 10, low=1)
        with viewer._model_lock:
            top = trees.next_tokens(
                viewer.store(), model, request.path_params["run_id"], node, at, top_k
            )
        return JSONResponse(
            {
                "node": node,
                "at": at,
                "tokens": [
                    {"token": t.token, "id": t.token_id, "prob": t.prob, "logprob": t.logprob}
                    for t in top
                ],
            }
        )

    @route("/api/trees", methods=("POST",))
    def start(request: Request) -> Response:
        body = _body(request)
        tree_id = trees.start_tree(
            viewer.store(),
            _needs_model(viewer).spec,
            str(body.get("run", "")),
            _field(body, "cond", int, 0),
            _field(body, "sample", int, None),
        )
        return JSONResponse({"tree": tree_id, "url": f"/trees/{tree_id}"})

    @route("/api/trees/{run_id}/sample", methods=("POST",))
    def sample(request: Request) -> Response:
        body = _body(request)
        params = SamplingParams(
            max_new_tokens=_field(body, "max_new_tokens", int, 16),
            temperature=_field(body, "temperature", float, 1.0),
            top_p=_field(body, "top_p", float, 1.0),
            seed=_field(body, "seed", int, 0),
        )
        with viewer._model_lock:
            made = trees.sample_children(
                viewer.store(),
                _needs_model(viewer),
                request.path_params["run_id"],
                _field(body, "node", int, 0),
                _field(body, "at", int, None),
                _field(body, "n", int, 1),
                params,
            )
        return JSONResponse({"nodes": [n.index for n in made]})

    @route("/api/trees/{run_id}/pick", methods=("POST",))
    def pick(request: Request) -> Response:
        body = _body(request)
        with viewer._model_lock:
            made = trees.pick_token(
                viewer.store(),
                _needs_model(viewer),
                request.path_params["run_id"],
                _field(body, "node", int, 0),
                _field(body, "at", int, None),
                _field(body, "token_id", int, 0),
                _field(body, "top_k", int, 10),
            )
        return JSONResponse({"nodes": [made.index]})

    @route("/api/trees/{run_id}/mark", methods=("POST",))
    def mark(request: Request) -> Response:
        body = _body(request)
        made = trees.mark(
            viewer.store(),
            request.path_params["run_id"],
            _field(body, "node", int, 0),
            bool(body.get("marked", True)),
            str(body.get("note", "")),
        )
        return JSONResponse({"node": made.node, "marked": made.marked})

    pages = [runs, run, report, conditional, compare, tree, export]
    return [*pages, next_token, start, sample, pick, mark]


def _needs_model(viewer: Viewer) -> PredictiveModel:
    if viewer.model is None:
        raise InputError(
            "this viewer has no model", fix="Start it with: condpred serve --model SPEC"
        )
    return viewer.model


def _body(request: Request) -> dict[str, Any]:
    """A write's JSON body (read in the worker thread: the endpoint runs there)."""
    raw = request.scope.get("condpred.body", b"")
    try:
        body = json.loads(raw or b"{}")
    except ValueError as error:
        raise InputError(f"the request body is not JSON ({error})") from None
    if not isinstance(body, dict):
        raise InputError("the request body must be a JSON object")
    return body


def _field(body: dict[str, Any], name: str, kind: type, default: Any) -> Any:
    """One field of a write's body, converted, or refused naming the field."""
    value = body.get(name)
    if value is None or value == "":
        return default
    try:
        return kind(value)
    except (TypeError, ValueError):
        raise InputError(f"field {name!r}: {value!r} is not a {kind.__name__}") from None


def _sample_views(store: Store, run_id: str, rows: list) -> list[dict[str, Any]]:
    """One page of (conditional, sample) pairs with their shaded tokens and check badges."""
    by_cond: dict[int, list[int]] = {}
    for cond, sample in rows:
        by_cond.setdefault(cond, []).append(sample.index)
    found = {
        (cond, index): badge
        for cond, indices in by_cond.items()
        for index, badge in _render.badges(
            store.check_results(run_id, cond, samples=indices)
        ).items()
    }
    return [
        {
            "cond": cond,
            "sample": sample,
            "tokens": _render.shaded(sample.tokens, sample.token_logprobs),
            "bits": -sample.logprob / _render.LN2,
            "badges": found.get((cond, sample.index), []),
        }
        for cond, sample in rows
    ]


def _item_tables(store: Store, run: Any, request: Request) -> list[dict[str, Any]]:
    """Each experiment table of the run, one page of it, with the columns of its registered
    row model (rows read and validated through it), or of its stored rows for a kind this
    condpred does not know."""
    models = {m.table: m for m in EXPERIMENTS.get(run.kind).rows} if run.kind in EXPERIMENTS else {}
    tables = []
    for table, count in store.item_tables(run.id).items():
        number = _int(request, f"t.{table}", 1, low=1)
        offset = (number - 1) * ITEMS_PAGE
        if table in models:
            model = models[table]
            columns = list(model.model_fields)
            rows = [
                r.model_dump(mode="json")
                for r in read_rows(store, run.id, model, offset=offset, limit=ITEMS_PAGE)
            ]
        else:
            rows = [d for _, d in store.item_data(run.id, table, offset=offset, limit=ITEMS_PAGE)]
            columns = list(dict.fromkeys(k for r in rows for k in r))
        tables.append(
            {
                "name": table,
                "count": count,
                "columns": columns,
                "rows": [[_cell(r.get(c)) for c in columns] for r in rows],
                "page": number,
                "pages": max(1, -(-count // ITEMS_PAGE)),
            }
        )
    return tables


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (dict, list)):
        text = json.dumps(value, ensure_ascii=False)
        return text if len(text) <= 300 else text[:300] + " ..."
    return str(value)


def _section_blocks(store: Store, run: Any, size: int) -> list[Any]:
    """The report section's blocks of a kind that has one (its tables and notes; figures are
    in the full report page), so a kind's own summary shows here without viewer changes. A
    section reads the whole run: past SECTION_ROWS samples and rows it is left to the report
    page, so a large run's page stays fast."""
    if run.kind not in SECTIONS:
        return []
    if size > SECTION_ROWS:
        note = f"This run has {size} samples and rows: its summary is on the full report page."
        return [{"title": "Summary", "note": note}]
    try:
        return SECTIONS.get(run.kind)(store, run)
    except Exception as error:  # a section that cannot read this run must not hide the rest
        return [{"title": "Report section failed", "note": f"{type(error).__name__}: {error}"}]


def _side(store: Store, spec: str, name: str) -> dict[str, Any]:
    """One side of a comparison, named RUN/COND in the address."""
    run_id, _, cond = spec.partition("/")
    if not run_id:
        raise InputError(
            f"{name}= is missing",
            source="the address",
            fix=f"Give {name}=RUN_ID/COND_INDEX, e.g. {name}=20261130-101500-ab12/0",
        )
    try:
        index = int(cond or 0)
    except ValueError:
        raise InputError(f"{name}={spec!r}: the conditional index is not a number") from None
    record = store.get_run(run_id)
    found = [c for c in store.conditionals(record.id) if c.index == index]
    if not found:
        raise InputError(f"run {record.id} has no conditional {index}", source=f"{name}=")
    samples = store.samples(record.id, index)
    return {
        "run": record,
        "conditional": found[0],
        "rendered": found[0].rendered,
        "summary": _render.sample_summary(samples),
    }
