"""docs/settings.md, generated from explorer.settings.SETTINGS (each variable, its type, default, bounds and help).

    $ .venv/bin/python scripts/settings_doc.py           # rewrite docs/settings.md
    $ .venv/bin/python scripts/settings_doc.py --check   # exit 1 if it is out of date (the tests do this)
"""

from __future__ import annotations

import sys
from pathlib import Path

from explorer.settings import SETTINGS

DOC = Path(__file__).resolve().parent.parent / "docs" / "settings.md"
HEAD = """# Settings

Every setting is an environment variable, declared once in `explorer/settings.py` with its type, default, bounds
and help; this page is generated from there (`scripts/settings_doc.py`). A bad value stops the server, the CLI or
the worker at start, naming the variable. `EXPLORER_OWNER_TOKEN` set but empty is refused: unset it, and a random
token is made.

| variable | type | default | allowed | what it sets |
|---|---|---|---|---|
"""


def render() -> str:
    rows = []
    for s in SETTINGS.values():
        allowed = f"{s.lo:g} to {s.hi:g}" if s.lo is not None else ("1 or 0" if s.kind == "flag" else "")
        default = "unset" if s.default is None else ("1" if s.default is True else "0" if s.default is False
                                                     else str(s.default))
        rows.append(f"| `{s.env}` | {s.kind} | {default} | {allowed} | {s.help} |")
    return HEAD + "\n".join(rows) + "\n"


def main(argv: list[str]) -> int:
    text = render()
    if argv == ["--check"]:
        if not DOC.exists() or DOC.read_text() != text:
            print("docs/settings.md is out of date: run scripts/settings_doc.py", file=sys.stderr)
            return 1
        return 0
    DOC.write_text(text)
    print("wrote docs/settings.md")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
