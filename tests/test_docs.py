"""The docs hold: parameter counts match the code, and every method citation resolves to docs/method.md."""

import re
from pathlib import Path

import pytest

from hhlib.model import build

ROOT = Path(__file__).resolve().parents[1]
CITING = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "hhlib").rglob("*.py")),
          *sorted((ROOT / "params").rglob("*.yaml")), *sorted((ROOT / "notebooks").glob("*.ipynb"))]
# the citations of the former, unpublished method description, and their rewrite to docs/method.md
# (the merger runs the same substitution over the tree with sed; see test_old_citations_are_rewritten)
OLD_CITATION = re.compile(r"spec (?:§|Sec\. ?|[Ss]ections? )(?=\d)|hybridhash-spec\.md")
NEW_CITATION = re.compile(r"docs/method\.md §(\d)(?:[-–/](?:§)?(\d))?(?:, '([^']+)')?")


def _sections() -> tuple[set[str], set[str]]:
    text = (ROOT / "docs" / "method.md").read_text(encoding="utf-8")
    numbers = set(re.findall(r"^## (\d)\. ", text, flags=re.M))
    headings = set(re.findall(r"^### (.+)$", text, flags=re.M))
    return numbers, headings


def _rewritten(path: Path) -> str:
    return OLD_CITATION.sub("docs/method.md §", path.read_text(encoding="utf-8"))


def test_method_has_the_cited_section_numbers():
    numbers, headings = _sections()
    assert numbers == {"1", "2", "3", "4", "5", "6"}
    assert {"A discrepancy between the paper and the reference code", "Ablation variants the paper discusses",
            "Pretrained weights"} <= headings
    # "§1 level step 4" citations name the fourth step of a level
    assert "\n4. `depth[i]` transformer layers" in (ROOT / "docs" / "method.md").read_text(encoding="utf-8")


def test_the_rewrite_finds_the_citations():
    assert sum(len(NEW_CITATION.findall(_rewritten(p))) for p in CITING) > 100


@pytest.mark.parametrize("path", CITING, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_citation_resolves_after_the_rewrite(path):
    numbers, headings = _sections()
    for match in NEW_CITATION.finditer(_rewritten(path)):
        first, last, heading = match.groups()
        assert {first, last or first} <= numbers, f"{path.name}: {match.group(0)} cites a missing section"
        if heading:
            assert any(h.startswith(heading) for h in headings), f"{path.name}: no heading {heading!r}"


def test_old_citations_are_rewritten():
    left = [f"{p.relative_to(ROOT)}: {m.group(0)}" for p in CITING
            for m in OLD_CITATION.finditer(p.read_text(encoding="utf-8"))]
    assert not left, f"{len(left)} citations of the unpublished spec remain, e.g. {left[:3]}"


def _millions(count: int) -> str:
    return f"{count / 1e6:.2g}M"


def test_parameter_counts_in_the_docs_match_the_presets():
    texts = {p: p.read_text(encoding="utf-8") for p in [ROOT / "README.md", *(ROOT / "params").rglob("*.yaml")]}
    claims = [(p, preset, number) for p, text in texts.items()
              for preset, number in re.findall(r"`?(\w+32)`? \(([\d.]+M) parameters", text)]
    claims += [(p, preset, number) for p, text in texts.items()
               for preset, number in re.findall(r'preset: "(\w+)"\s+# ([\d.]+M)-parameter', text)]
    assert len(claims) >= 3
    for path, preset, number in claims:
        count = sum(p.numel() for p in build(preset, bits=64).parameters())
        assert _millions(count) == number, f"{path.name}: {preset} has {count:,} parameters, the text says {number}"
