"""Code and docs cite only files of this repository, and those citations resolve.

The team's contract that FMA was first written against is not part of the
repository, so a comment citing it ("CONTRACT.md §7.3", or a dotted section
number such as "§4.6", which none of our docs has) points a reader nowhere;
so do the team's other files beside it (SCENARIOS.md, STYLE.md and its
numbered rules, ARCHITECTURE.md, anything under ``../shared/``).
Comments cite our own pages instead, as ``docs/<page>.md, "<heading>"``, and
``test_doc_citations_name_an_existing_page_and_heading`` checks that each such
citation names an existing page and the start of one of its headings (or of a
paragraph's bold lead, such as ``**GPU-allocation policy**``).
"""

from __future__ import annotations

import pathlib
import re
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
SUFFIXES = frozenset({".py", ".md", ".yaml", ".yml", ".toml", ".json", ".sh", ".tpl", ".txt"})
NAMES = frozenset({"Makefile"})
SKIPPED_DIRS = frozenset({".git", ".venv", "node_modules", "__pycache__"})

CONTRACT = re.compile(r"\bCONTRACT\b")
DOTTED_SECTION = re.compile(r"§\s?\d+\.\d+")
TEAM_FILE = re.compile(r"\b(?:SCENARIOS|STYLE|ARCHITECTURE)(?:\.md\b|\s+rule\b)|\.\./shared/|/work/shared\b")

# Not converted yet: paths (a directory ends with "/") that may still cite the contract or the team's other
# files.  Everything is converted; keep it empty.
PENDING: tuple[str, ...] = ()

# Citations of a section that does not exist yet: (page, heading), each with the reason.  None now.
DANGLING: frozenset[tuple[str, str]] = frozenset()

# ``docs/page.md, "Heading"`` or ``docs/page.md, "One" and "Two"``, possibly wrapped over comment lines.
DOC_CITATION = re.compile(r'docs/([\w./-]+\.md),\s+((?:"[^"\n]+")(?:(?:,|\s+and)\s+"[^"\n]+")*)')
QUOTED = re.compile(r'"([^"\n]+)"')
SECTION_NUMBER = re.compile(r"^\d+(?:\.\d+)*\.?\s+")
BOLD_LEAD = re.compile(r"^(?:[-*]\s+)?\*\*([^*]+)\*\*")


def _files() -> list[pathlib.Path]:
    """The repository's text files: tracked ones when git can say, else every file outside skipped dirs."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True, timeout=60
        ).stdout.decode()
        candidates = [ROOT / name for name in listed.split("\0") if name]
    except (OSError, subprocess.SubprocessError):
        candidates = [p for p in ROOT.rglob("*") if not SKIPPED_DIRS.intersection(p.relative_to(ROOT).parts)]
    return sorted(p for p in candidates if p.is_file() and (p.suffix in SUFFIXES or p.name in NAMES))


def _relative(path: pathlib.Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _pending(relative: str) -> bool:
    return any(relative == entry or (entry.endswith("/") and relative.startswith(entry)) for entry in PENDING)


def _hits(pattern: re.Pattern[str]) -> list[str]:
    found = []
    for path in _files():
        relative = _relative(path)
        if _pending(relative) or path == pathlib.Path(__file__).resolve():
            continue
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
            if pattern.search(line):
                found.append(f"{relative}:{number}: {line.strip()}")
    return found


def test_nothing_cites_the_contract() -> None:
    hits = _hits(CONTRACT)
    assert not hits, "cite docs/<page>.md and its section heading instead:\n" + "\n".join(hits)


def test_no_dotted_section_numbers() -> None:
    hits = _hits(DOTTED_SECTION)
    assert not hits, "a dotted § number is the contract's; cite our docs instead:\n" + "\n".join(hits)


def test_nothing_cites_the_team_files() -> None:
    hits = _hits(TEAM_FILE)
    assert not hits, "not in the repository; cite docs/<page>.md or state the rule instead:\n" + "\n".join(hits)


def _headings(page: pathlib.Path) -> list[str]:
    """The headings of ``page`` (without ``#`` marks and section numbers) and its paragraphs' bold leads."""
    found, fenced = [], False
    for line in page.read_text().splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and line.startswith("#"):
            found.append(SECTION_NUMBER.sub("", line.lstrip("#").strip()))
        elif not fenced and (lead := BOLD_LEAD.match(line)):
            found.append(lead.group(1).strip())
    return found


def _names_a_heading(cited: str, headings: list[str]) -> bool:
    cited = SECTION_NUMBER.sub("", cited)
    return any(h == cited or (h.startswith(cited) and not h[len(cited)].isalnum()) for h in headings)


def _unwrapped(text: str) -> str:
    """Join wrapped lines, dropping comment marks, so a citation split over lines reads as one."""
    return re.sub(r"\s*\n\s*(?:#+\s*)?", " ", text)


def test_doc_citations_name_an_existing_page_and_heading() -> None:
    problems = []
    headings: dict[str, list[str]] = {}
    for path in _files():
        if path.suffix not in {".py", ".yaml", ".yml"} or path == pathlib.Path(__file__).resolve():
            continue
        for match in DOC_CITATION.finditer(_unwrapped(path.read_text(errors="replace"))):
            page = match.group(1)
            if page not in headings:
                target = ROOT / "docs" / page
                headings[page] = _headings(target) if target.is_file() else []
            for cited in QUOTED.findall(match.group(2)):
                if (page, cited) not in DANGLING and not _names_a_heading(cited, headings[page]):
                    problems.append(f'{_relative(path)}: docs/{page}, "{cited}"')
    assert not problems, "no such page or heading:\n" + "\n".join(problems)


@pytest.mark.parametrize(
    ("line", "contract", "dotted"),
    [
        ("(CONTRACT.md §7.3)", True, True),
        ("as CONTRACT §9 says", True, False),
        ("ranges (§4.6)", False, True),
        ("the policies of docs/protocol.md §12", False, False),
        ('(docs/protocol.md, "Launcher API")', False, False),
    ],
)
def test_what_counts_as_a_contract_citation(line: str, contract: bool, dotted: bool) -> None:
    assert bool(CONTRACT.search(line)) is contract
    assert bool(DOTTED_SECTION.search(line)) is dotted


@pytest.mark.parametrize(
    ("line", "cites"),
    [
        ("The scenarios of `SCENARIOS.md` run", True),
        ("(STYLE.md rule 5)", True),
        ("explicitly (STYLE rule 11)", True),
        ('See ARCHITECTURE.md, "The development cluster".', True),
        ("read ../shared/CONTRACT.md", True),
        ("the scenarios of docs/e2e.md", False),
        ('(docs/e2e.md, "The scenarios")', False),
        ("STYLE_GUIDE = 1; ARCHITECTURES = []", False),
    ],
)
def test_what_counts_as_a_team_file_citation(line: str, cites: bool) -> None:
    assert bool(TEAM_FILE.search(line)) is cites


@pytest.mark.parametrize(
    ("cited", "expected"),
    [
        ("Annotations", True),
        ("2. Annotations", True),
        ("Placement modes", True),
        ("Where the hints' cost goes", True),
        ("Annot", False),
        ("Scheduling", False),
    ],
)
def test_heading_matching(cited: str, expected: bool) -> None:
    headings = [
        "Annotations",
        "Placement modes (`placement: extender | hints | hints+extender`)",
        "Where the hints' cost goes, and what node sampling costs (measured)",
    ]
    assert _names_a_heading(cited, headings) is expected


def test_a_wrapped_citation_is_read_whole() -> None:
    text = 'x (docs/protocol.md, "Fixed names,\n    # containers and environment" and "Roles of Pods").'
    match = DOC_CITATION.search(_unwrapped(text))
    assert match is not None
    assert QUOTED.findall(match.group(2)) == ["Fixed names, containers and environment", "Roles of Pods"]
