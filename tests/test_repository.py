"""The repository stands on its own: what its docs link to is in it, and nothing points outside it.

A user's clone has only the repository, so a relative link in README.md or docs/ must name a file
(and, for a Markdown file, a heading) that exists, and no code, test or doc may read the team's
folders beside the checkout.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

# [text](target "title") and ![alt](target); [label]: target; <a href="..."> and <img src="...">.
INLINE = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$")
HTML = re.compile(r"""\b(?:href|src)\s*=\s*["']([^"']+)["']""")
FENCE = re.compile(r"^\s{0,3}(```|~~~)")
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


@dataclass(frozen=True)
class Link:
    source: Path
    line: int
    target: str

    def __str__(self) -> str:
        return f"{self.source.relative_to(ROOT)}:{self.line}: {self.target}"


def links(path: Path) -> list[Link]:
    """The relative links of a Markdown file, outside fenced code blocks and inline code."""
    found: list[Link] = []
    fenced = False
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if FENCE.match(line):
            fenced = not fenced
            continue
        if fenced:
            continue
        text = re.sub(r"`[^`]*`", "", line)  # `[a](b)` in inline code is not a link
        targets = INLINE.findall(text) + HTML.findall(text) + REFERENCE.findall(text)
        found += [Link(path, number, t) for t in targets if not SCHEME.match(t)]
    return found


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]|<[^>]+>", "", heading.strip().lower())
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # a link in a heading keeps its text
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """The anchors of a Markdown file's headings (a repeated heading gets -1, -2...)."""
    seen: dict[str, int] = {}
    result: set[str] = set()
    fenced = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if FENCE.match(line):
            fenced = not fenced
        heading = re.match(r"^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$", line)
        if fenced or not heading:
            continue
        base = slug(heading.group(1))
        count = seen.get(base, 0)
        seen[base] = count + 1
        result.add(base if count == 0 else f"{base}-{count}")
    return result


def broken(link: Link) -> str | None:
    """Why a relative link does not resolve inside the repository, or None when it does."""
    target, _, anchor = link.target.partition("#")
    path = (link.source.parent / target).resolve() if target else link.source
    if not path.is_relative_to(ROOT):
        return "points outside the repository"
    if not path.exists():
        return "no such file"
    if anchor and path.suffix == ".md" and anchor.lower() not in anchors(path):
        return f"no heading #{anchor} in {path.relative_to(ROOT)}"
    return None


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_of_the_docs_resolves(doc: Path) -> None:
    problems = [f"{link}: {why}" for link in links(doc) if (why := broken(link))]
    assert not problems, "\n".join(problems)


def test_the_docs_have_links_to_check() -> None:
    """Guards the parser itself: README.md links to docs/ (inline) and to its screenshot."""
    targets = {link.target for link in links(ROOT / "README.md")}
    assert "docs/memory.md" in targets and "docs/images/vscode-mlp.png" in targets, targets


def test_a_broken_link_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(f"{__name__}.ROOT", tmp_path)
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# Usage\n\n## Install it\n")
    doc = tmp_path / "README.md"
    doc.write_text(
        "See [a](docs/a.md), [b](docs/missing.md), [c](docs/a.md#install-it), [d](docs/a.md#nope),\n"
        "[e](../outside.md), [f](https://example.com/x.md), `[g](not-a-link.md)`, [h](#usage-notes).\n"
        "```\n[i](in-a-code-block.md)\n```\n[ref]: docs/gone.png\n<img src=\"docs/none.png\">\n"
        "## Usage notes\n"
    )
    problems = {link.target: broken(link) for link in links(doc)}
    assert problems == {
        "docs/a.md": None, "docs/missing.md": "no such file", "docs/a.md#install-it": None,
        "docs/a.md#nope": "no heading #nope in docs/a.md", "../outside.md": "points outside the repository",
        "#usage-notes": None, "docs/gone.png": "no such file", "docs/none.png": "no such file",
    }


def test_nothing_reads_the_folders_beside_the_checkout() -> None:
    """The team's shared folder (calibration data, notes) is not in a user's clone: the copy the
    project uses is benchmarks/data/calibration."""
    outside = re.compile(r"\.\./" + "shared|/work/" + "shared")
    roots = ["README.md", "pyproject.toml", "server", "tests", "benchmarks", "docs", "examples", ".ci",
             "client/src", "client/test", "client/e2e", "package.json"]
    hits = []
    for name in roots:
        base = ROOT / name
        for path in [base] if base.is_file() else sorted(base.rglob("*")) if base.is_dir() else []:
            if path.is_file() and path.suffix in {".py", ".md", ".ts", ".sh", ".json", ".toml", ".yml", ".yaml"}:
                text = path.read_text(encoding="utf-8", errors="replace")
                hits += [f"{path.relative_to(ROOT)}:{text.count(chr(10), 0, m.start()) + 1}"
                         for m in outside.finditer(text)]
    assert not hits, hits


def test_every_finding_code_named_anywhere_is_documented() -> None:
    """A finding code in the code, the tests, the docs or the extension is one docs/rules.md
    documents (the output-format tests once used two codes that do not exist)."""
    documented = set(re.findall(r"^## (VL\d{3})", (ROOT / "docs" / "rules.md").read_text(), re.M))
    files = [*ROOT.glob("server/**/*.py"), *ROOT.glob("tests/*.py"), *ROOT.glob("docs/*.md"),
             ROOT / "README.md", *ROOT.glob("client/src/*.ts")]
    named = {(code, f.relative_to(ROOT).as_posix()) for f in files
             for code in re.findall(r"\bVL\d{3}\b", f.read_text(errors="replace"))}
    assert len(documented) >= 9 and len(named) > 30
    assert sorted((c, f) for c, f in named if c not in documented) == []
