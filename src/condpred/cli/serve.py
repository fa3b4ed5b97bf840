"""`condpred serve`: the viewer of stored runs (and, with --model, of growing trees)."""

from __future__ import annotations

import ipaddress
from typing import Annotated

import typer

from condpred.cli.app import DbOpt, app, err, load_model_with_bar, out
from condpred.store import Store


@app.command("serve")
def serve_cmd(
    db: DbOpt = None,
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on (loopback: only this machine).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port.")] = 8000,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            "-m",
            help="A model to grow continuation trees with (default, an HF id/dir, gguf:PATH, "
            "openai:URL#MODEL); without it the viewer is read-only.",
        ),
    ] = None,
) -> None:
    """Open a local web app on the run store: runs, conditionals side by side, samples with
    surprisal shading and check badges, and continuation trees."""
    import uvicorn

    from condpred.viewer import create_app

    with Store(db, create=False) as store:  # a missing store fails before anything starts
        path = store.path
    loaded = load_model_with_bar(model) if model else None
    if not _loopback(host):
        err.print(
            f"[bold yellow]warning:[/] listening on {host}: anyone who can reach this machine "
            "can read every stored run" + (" and grow trees with the model" if model else "")
        )
    shown = f"[{host}]" if ":" in host else host
    # On loopback, only the names of this machine: a page whose site name was re-pointed at
    # 127.0.0.1 (DNS rebinding) is refused. Listening wider, the machine's names are not known
    # here and the viewer is reachable anyway, so any Host is answered (the warning said so).
    local = {f"{shown}:{port}", f"localhost:{port}", f"127.0.0.1:{port}", f"[::1]:{port}"}
    application = create_app(path, loaded, hosts=local if _loopback(host) else set())
    out.print(f"condpred viewer on http://{shown}:{port}/  ({path}; Ctrl-C stops it)")
    uvicorn.run(application, host=host, port=port, log_level="warning")


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
