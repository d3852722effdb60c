"""The repository is self-contained: its docs say what a newcomer needs, nothing points at files
outside it, and the clause list matches the policies' own clause tags."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from policies.site import load_site

ROOT = Path(__file__).resolve().parent.parent
# What the repository holds, not what a build or a run leaves beside it (see .gitignore).
SKIP_DIRS = {
    ".git",
    ".venv",
    "var",
    "__pycache__",
    "node_modules",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    ".hypothesis",
    "build",
    "test-artifacts",
}
TEXT = {".py", ".md", ".yaml", ".yml", ".toml", ".sh", ".txt", ".service", ".conf", ".cfg", ""}
OUTSIDE = re.compile(r"\.\./shared|\.\./CONTRACT|CONTRACT\.md|REQUIREMENTS\.md")
TAG = re.compile(r'"((?:EXAM|ARCH|CITY|CO|DOC|SI|RESP)-[\w.-]+)"')


def repo_files() -> list[Path]:
    found = []
    for path in ROOT.rglob("*"):
        rel = path.relative_to(ROOT)
        if (
            any(part in SKIP_DIRS or part.endswith(".egg-info") for part in rel.parts)
            or not path.is_file()
        ):
            continue
        if path.suffix in TEXT and path != Path(__file__):
            found.append(path)
    return found


def test_nothing_points_outside_the_repository() -> None:
    offenders = []
    for path in repo_files():
        for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").split("\n")):
            if OUTSIDE.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{n + 1}: {line.strip()}")
    assert not offenders, "\n".join(offenders)


@pytest.mark.parametrize("name", ["site.yaml", "agency.yaml"])
def test_reference_sites_load(name: str) -> None:
    path = ROOT / "deploy" / "examples" / name
    assert yaml.safe_load(path.read_text(encoding="utf-8"))["site"]["id"]
    load_site(path)


def policy_clauses() -> set[tuple[str, str]]:
    """(policy id, clause tag) for every tag a rule can put on its alerts."""
    pairs: set[tuple[str, str]] = set()
    for path in (ROOT / "policies" / "rules").glob("*.py"):
        for chunk in re.split(r"^class ", path.read_text(encoding="utf-8"), flags=re.M)[1:]:
            policy = re.search(r'^    policy = "([\w-]+)"', chunk, re.M)
            if policy is None:
                continue
            for line in chunk.splitlines():
                if "clause" in line:
                    pairs.update((policy.group(1), tag) for tag in TAG.findall(line))
    return pairs


def test_clause_list_names_every_policy_under_every_tag_it_raises() -> None:
    rows = {
        m.group(1): m.group(2)
        for m in re.finditer(
            r"^\| ([A-Z]+-[\w.-]+) \|.*\|(.*)\|$",
            (ROOT / "docs" / "clauses.md").read_text(encoding="utf-8"),
            re.M,
        )
    }
    pairs = policy_clauses()
    assert len({p for p, _ in pairs}) >= 20  # the scan found the rules
    missing = sorted((p, t) for p, t in pairs if f"`{p}`" not in rows.get(t, ""))
    assert not missing, f"docs/clauses.md does not list {missing}"


def test_interfaces_list_every_policy_id() -> None:
    text = (ROOT / "docs" / "interfaces.md").read_text(encoding="utf-8")
    section = text[text.index("## §4") : text.index("## §5")]
    assert {p for p, _ in policy_clauses()} <= set(re.findall(r"^\| `([\w-]+)` \|", section, re.M))


def test_readme_points_at_the_clause_list_and_the_interfaces() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "docs/clauses.md" in readme and "docs/interfaces.md" in readme
