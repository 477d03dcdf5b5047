"""Serve the app, with the modules its pages import loaded before the first visitor arrives.

    $ .venv/bin/python scripts/serve.py [streamlit options]      # what `make run` does

`streamlit run` imports a page's modules during the first script run, while the first visitor waits
(pandas, plotly and the engine's results modules: about half a second here). Importing them first
takes that off the first view; everything else is `streamlit run app.py`.

Listening beyond this machine (`--server.address 0.0.0.0`), visitors are viewers: it prints the owner's
link (with a token, as Jupyter does) that lets its holder build, upload, delete and search; `--open`
(a trusted room) lets every visitor act, within the quotas. See pages/ui/roles.py.

It also tells Streamlit that app.py's st.navigation defines the pages before the first visitor (see
pages/ui/entry.py).
"""

import os
import secrets
import socket
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pages.ui.loading, pages.ui.jobs  # noqa: E402,F401  (pandas, streamlit, the cache, results, executor)
import explorer.present.figures  # noqa: E402,F401  (plotly)
import explorer.present.pareto  # noqa: E402,F401
from streamlit.web import cli  # noqa: E402

from explorer import settings  # noqa: E402
from pages.ui import entry, roles  # noqa: E402


def static_files_from_memory() -> None:
    """Serve Streamlit's own static files (a fresh browser fetches about 130 of them, 9 MB) from memory.

    Starlette reads each one from disk in 64 KB chunks, every open, read and close a hop to a worker
    thread: the bulk of what a new visitor costs the server. The files are immutable (hashed names), so
    each is read once and kept (about 25 MB at most); headers, ETags and 304s stay Starlette's."""
    from starlette.datastructures import Headers
    from starlette.responses import FileResponse, Response
    from starlette.staticfiles import NotModifiedResponse, StaticFiles

    kept: dict[tuple[str, int, int], bytes] = {}

    def file_response(self, full_path, stat_result, scope, status_code=200):
        headers = FileResponse(full_path, status_code=status_code, stat_result=stat_result).headers
        if self.is_not_modified(headers, Headers(scope=scope)):
            return NotModifiedResponse(headers)
        key = (str(full_path), stat_result.st_mtime_ns, stat_result.st_size)
        if key not in kept:
            kept[key] = Path(full_path).read_bytes()
        return Response(kept[key], status_code, headers=dict(headers))

    StaticFiles.file_response = file_response


def option(args: list[str], name: str, default: str) -> str:
    """A Streamlit option as given on the command line (--name value or --name=value), else config.toml's."""
    for i, a in enumerate(args):
        if a == f"--{name}" and i + 1 < len(args):
            return args[i + 1]
        if a.startswith(f"--{name}="):
            return a.split("=", 1)[1]
    section, key = name.split(".")
    config = ROOT / ".streamlit" / "config.toml"
    return str(tomllib.loads(config.read_text()).get(section, {}).get(key, default)) if config.exists() else default


def announce(address: str, port: str) -> None:
    """Who may act on this server, said once at start (the owner link is printed only here)."""
    if roles.loopback(address):
        return
    if roles.open_room():
        print("Open room (--open): every visitor may build, upload, delete and search, within the quotas.", flush=True)
        return
    os.environ.setdefault(roles.TOKEN_ENV, secrets.token_urlsafe(32))
    shown = socket.gethostname() if address in ("", "0.0.0.0", "::") else address
    print("Visitors are viewers. Your owner link (anyone holding it can act; share the view links instead):\n"
          f"    http://{shown}:{port}/?token={os.environ[roles.TOKEN_ENV]}", flush=True)


if __name__ == "__main__":
    try:
        settings.check()  # a bad EXPLORER_* value (an empty owner token: a link nobody could use) stops the start
    except settings.SettingsError as exc:
        sys.exit(f"error: {exc}")
    args = sys.argv[1:]
    if "--open" in args:
        args.remove("--open")
        os.environ[roles.OPEN_ENV] = "1"
    announce(option(args, "server.address", ""), option(args, "server.port", "8501"))
    entry.use_app_navigation()
    static_files_from_memory()
    sys.argv = ["streamlit", "run", str(ROOT / "app.py"), *args]
    sys.exit(cli.main())
