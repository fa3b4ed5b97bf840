"""Print pyproject.toml's runtime dependencies pinned at their lower bounds (`name==low`), the
constraints `make test-min` installs to prove that those bounds are honest."""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

LOWER = re.compile(r"^([A-Za-z0-9_.\-\[\]]+?)\s*(?:\[[^\]]*\])?\s*>=\s*([^,;\s]+)")


def main() -> None:
    project = tomllib.loads(Path("pyproject.toml").read_text())["project"]
    for requirement in project["dependencies"]:
        match = LOWER.match(requirement)
        if not match:
            sys.exit(f"pyproject.toml: dependency {requirement!r} has no '>=' lower bound")
        print(f"{match.group(1)}=={match.group(2)}")


if __name__ == "__main__":
    main()
