"""The README stays short, and the docs stay true to the tree they describe.

Checks, without a network: the README's length; every relative link in README.md and
docs/ reaches a file (and a heading, when it names one); every `make` target the
README names exists; the README names the command CI runs; every NEXT_PRIVATE_* and
NEXT_PUBLIC_* variable of the settings model is documented in docs/configuration.md.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from docjobs.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
CONFIGURATION = DOCS / "configuration.md"
MAKEFILE = ROOT / "Makefile"
CI_SCRIPT = ROOT / ".ci" / "run"

README_MAX_LINES = 200
DOCUMENTED_PREFIXES = ("NEXT_PRIVATE_", "NEXT_PUBLIC_")

FENCE = re.compile(r"^\s*(```|~~~)")
INLINE_CODE = re.compile(r"`[^`]*`")
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
MAKE_COMMAND = re.compile(r"^make ([A-Za-z0-9][\w-]*)")
MAKE_TARGET = re.compile(r"^([A-Za-z0-9][\w-]*)\s*:(?!=)", re.MULTILINE)
EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)


def markdown_files() -> list[Path]:
    """README.md and every Markdown file under docs/."""
    return [README, *sorted(DOCS.rglob("*.md"))]


def split_code(text: str) -> tuple[list[str], list[str]]:
    """Split Markdown into prose lines and code (fenced lines and inline code spans).

    Returns:
        The prose lines with inline code removed, and the code: each fenced line and
        each inline span's content.
    """
    prose: list[str] = []
    code: list[str] = []
    fenced = False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        if fenced:
            code.append(line.strip())
            continue
        code.extend(span.strip("`").strip() for span in INLINE_CODE.findall(line))
        prose.append(INLINE_CODE.sub("", line))
    return prose, code


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading keeps its text
    text = text.replace("`", "").strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading anchor of a Markdown file, repeats numbered as GitHub numbers them."""
    seen: Counter[str] = Counter()
    found: set[str] = set()
    fenced = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        match = None if fenced else HEADING.match(line)
        if match is None:
            continue
        base = slug(match.group(2))
        found.add(base if seen[base] == 0 else f"{base}-{seen[base]}")
        seen[base] += 1
    return found


def broken_links(path: Path) -> list[str]:
    """The relative links of ``path`` that reach no file, or no heading of it."""
    prose, _ = split_code(path.read_text(encoding="utf-8"))
    broken: list[str] = []
    for line in prose:
        for target in LINK.findall(line):
            if EXTERNAL.match(target):
                continue
            file_part, _, anchor = target.partition("#")
            linked = (path.parent / file_part).resolve() if file_part else path
            where = f"{path.relative_to(ROOT)}: ({target})"
            if not linked.exists():
                broken.append(f"{where} reaches no file")
            elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
                broken.append(f"{where}: {linked.name} has no heading #{anchor}")
    return broken


def test_readme_is_at_most_200_lines() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, (
        f"README.md has {len(lines)} lines; at most {README_MAX_LINES}: move the details to docs/"
    )


def test_every_relative_link_resolves() -> None:
    broken = [link for path in markdown_files() for link in broken_links(path)]
    assert broken == [], "broken links:\n" + "\n".join(broken)


def test_every_make_target_the_readme_names_exists() -> None:
    _, code = split_code(README.read_text(encoding="utf-8"))
    named = {match.group(1) for snippet in code if (match := MAKE_COMMAND.match(snippet))}
    targets = set(MAKE_TARGET.findall(MAKEFILE.read_text(encoding="utf-8")))
    assert named, "the README names no make target"
    assert named - targets == set(), (
        f"the README names make targets the Makefile lacks: {sorted(named - targets)}"
    )


def test_the_readme_names_the_command_ci_runs() -> None:
    ci_commands = [
        line.strip()
        for line in CI_SCRIPT.read_text(encoding="utf-8").splitlines()
        if MAKE_COMMAND.match(line.strip())
    ]
    _, code = split_code(README.read_text(encoding="utf-8"))
    readme_commands = {snippet.split("#")[0].strip() for snippet in code}
    assert ci_commands, ".ci/run runs no make target"
    missing = [command for command in ci_commands if command not in readme_commands]
    assert missing == [], f"the README does not show the command .ci/run runs: {missing}"


def test_every_settings_variable_is_in_configuration_md() -> None:
    variables = {
        field.alias
        for field in Settings.model_fields.values()
        if field.alias and field.alias.startswith(DOCUMENTED_PREFIXES)
    }
    assert CONFIGURATION.exists(), "docs/configuration.md is missing"
    documented = set(
        re.findall(r"\b(?:NEXT_PRIVATE|NEXT_PUBLIC)_\w+", CONFIGURATION.read_text(encoding="utf-8"))
    )
    assert len(variables) > 40, f"read only {len(variables)} variables from the settings model"
    assert variables - documented == set(), (
        f"docs/configuration.md lacks: {', '.join(sorted(variables - documented))}"
    )
