"""A real HTTP server on 127.0.0.1 that speaks the OpenAI completions API, or misbehaves on
command: HTML or invalid JSON with status 200, wrongly shaped bodies, non-numeric log-probs,
error statuses, dropped connections, hangs. For the reliability tests and the fuzz harness.

Its well-behaved answers are computed from the prompt (one token per character, log-prob -1
each), enough for condpred's `openai` backend to score and sample; no model behind it.
"""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

MODEL = "m"


def echo_reply(prompt: str, *, sample: bool) -> dict[str, Any]:
    """A well-formed completions reply: the prompt echoed one character per token (scoring), or
    a three-token sample."""
    if sample:
        tokens = ["a", "b", "c"]
        return {
            "choices": [
                {
                    "text": "abc",
                    "finish_reason": "length",
                    "logprobs": {
                        "tokens": tokens,
                        "token_logprobs": [-1.0] * 3,
                        "top_logprobs": [{t: -1.0} for t in tokens],
                        "text_offset": [0, 1, 2],
                    },
                }
            ]
        }
    tokens = [*prompt, "x"]
    return {
        "choices": [
            {
                "text": prompt + "x",
                "finish_reason": "length",
                "logprobs": {
                    "tokens": tokens,
                    "token_logprobs": [None] + [-1.0] * (len(tokens) - 1),
                    "top_logprobs": [None] + [{t: -1.0} for t in tokens[1:]],
                    "text_offset": list(range(len(tokens))),
                },
            }
        ]
    }


# What the server does for /v1/completions: a mode name, or (status, body bytes).
MODES = ("ok", "html", "badjson", "shape", "nonnumeric", "nulls", "empty", "500", "404", "drop",
         "hang", "list", "mismatch")  # fmt: skip


def misbehave(mode: str, prompt: str, sample: bool) -> tuple[int, bytes] | None:
    """The status and body for `mode` (None: drop the connection or hang)."""
    good = echo_reply(prompt, sample=sample)
    if mode == "ok":
        return 200, json.dumps(good).encode()
    if mode == "html":
        return 200, b"<html><body><h1>502 Bad Gateway</h1></body></html>"
    if mode == "badjson":
        return 200, json.dumps(good).encode()[:-7]
    if mode == "shape":
        return 200, json.dumps({"choices": [{"logprobs": "none"}]}).encode()
    if mode == "nonnumeric":
        good["choices"][0]["logprobs"]["token_logprobs"] = ["abc"] * len(
            good["choices"][0]["logprobs"]["tokens"]
        )
        return 200, json.dumps(good).encode()
    if mode == "nulls":
        logprobs = good["choices"][0]["logprobs"]
        logprobs["token_logprobs"] = [None] * len(logprobs["tokens"])
        return 200, json.dumps(good).encode()
    if mode == "empty":
        return 200, b'{"choices": []}'
    if mode == "list":
        return 200, b"[1, 2, 3]"
    if mode == "mismatch":
        good["choices"][0]["logprobs"]["token_logprobs"] = [-1.0]
        return 200, json.dumps(good).encode()
    if mode in ("500", "404"):
        return int(mode), b'{"error": {"message": "no"}}'
    return None  # drop, hang


class _QuietServer(http.server.ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that gave up (timed out) is expected here, not worth a traceback


@dataclass
class MisbehavingServer:
    """`with MisbehavingServer() as server:` serves at `server.url`; set `server.mode` (one of
    MODES) or `server.reply` (a function of the request body returning (status, bytes)) at any
    time. `/v1/models` always lists the model "m" unless `models_reply` is set."""

    mode: str = "ok"
    reply: Callable[[dict[str, Any]], tuple[int, bytes]] | None = None
    models_reply: tuple[int, bytes] | None = None
    requests: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._server = _QuietServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> MisbehavingServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()  # releases hanging handlers
        self._server.shutdown()
        self._server.server_close()

    def spec(self, model: str = MODEL) -> str:
        return f"openai:{self.url}#{model}"

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                if self.path.rstrip("/").endswith("/models"):
                    status, body = server.models_reply or (
                        200,
                        json.dumps({"data": [{"id": MODEL, "object": "model"}]}).encode(),
                    )
                    return self._send(status, body)
                self._send(404, b'{"error": {"message": "not found"}}')

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                server.requests += 1
                try:
                    request = json.loads(raw)
                except ValueError:
                    request = {}
                if server.reply is not None:
                    return self._send(*server.reply(request))
                sample = not request.get("echo")
                answer = misbehave(server.mode, str(request.get("prompt", "")), sample)
                if answer is None:
                    if server.mode == "hang":
                        server._stop.wait(60)
                    self.close_connection = True
                    self.connection.close()
                    return None
                return self._send(*answer)

            def _send(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler
