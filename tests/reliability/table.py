"""The reliability campaign's table, from the cases its tests recorded (tests/reliability/campaign.py).

    python -m tests.reliability.table [--results DIR] [--out FILE]

writes the table between the markers of FILE (docs/reliability.md by default; the prose around it stays)
and prints it. It exits 1 when any figure of data lost, unclear errors, partial artifacts or secrets seen
is not 0, when a re-run did not converge, when a case's test broke, or when a class of the campaign has no
case at all: an empty row is no evidence.
"""
from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

from tests.reliability.campaign import FAULT_CLASSES, FIGURES, REPO, read_cases, results_dir

BEGIN = "<!-- reliability-table:begin (make reliability writes this table) -->"
END = "<!-- reliability-table:end -->"


def _empty_row() -> dict[str, Any]:
    return {"cases": 0, **{f: 0 for f in FIGURES}, "rerun": 0, "converged": 0, "errored": 0, "names": set()}


def summarise(cases: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = {key: _empty_row() for key in FAULT_CLASSES}
    for case in cases:
        row = rows.setdefault(case["fault_class"], _empty_row())
        row["cases"] += 1
        row["names"].add(case["name"])
        for figure in FIGURES:
            row[figure] += int(case.get(figure) or 0)
        if case.get("converged") is not None:
            row["rerun"] += 1
            row["converged"] += 1 if case["converged"] else 0
        row["errored"] += 1 if case.get("errored") else 0
    return rows


def render(rows: dict[str, dict[str, Any]]) -> str:
    lines = ["| fault or input class | cases tried | data lost | unclear errors | partial artifacts left "
             "| secrets seen | converged on re-run |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    totals: dict[str, int] = defaultdict(int)
    for key, row in rows.items():
        title = FAULT_CLASSES.get(key, key)
        converged = f"{row['converged']} of {row['rerun']}" if row["rerun"] else "n/a"
        lines.append(f"| {title} | {row['cases']} | {row['data_lost']} | {row['unclear_errors'] + row['errored']} "
                     f"| {row['partial_artifacts']} | {row['secrets_seen']} | {converged} |")
        for figure in ("cases", *FIGURES, "rerun", "converged", "errored"):
            totals[figure] += row[figure]
    lines.append(f"| **all** | **{totals['cases']}** | **{totals['data_lost']}** "
                 f"| **{totals['unclear_errors'] + totals['errored']}** | **{totals['partial_artifacts']}** "
                 f"| **{totals['secrets_seen']}** | **{totals['converged']} of {totals['rerun']}** |")
    return "\n".join(lines) + "\n"


def problems_of(rows: dict[str, dict[str, Any]], cases: list[dict[str, Any]]) -> list[str]:
    found = [f"{FAULT_CLASSES.get(key, key)}: no case tried" for key, row in rows.items() if row["cases"] == 0]
    for case in cases:
        if case.get("problems") or case.get("errored") or case.get("converged") is False:
            found.append(f"{case['fault_class']} / {case['name']} ({case.get('test')}): "
                         + "; ".join(case.get("problems") or ["broke"]))
    return found


def write_between_markers(path: Path, table: str) -> None:
    text = path.read_text(encoding="utf-8") if path.exists() else f"# Reliability\n\n{BEGIN}\n{END}\n"
    if BEGIN not in text or END not in text:
        raise SystemExit(f"{path}: the markers {BEGIN!r} and {END!r} are missing; the table goes between them")
    head, rest = text.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    path.write_text(f"{head}{BEGIN}\n{table}{END}{tail}", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=None, help="the cases' directory (build/reliability)")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "reliability.md",
                        help="the file whose table is rewritten (docs/reliability.md)")
    args = parser.parse_args(argv)
    cases = read_cases(args.results or results_dir())
    rows = summarise(cases)
    table = render(rows)
    write_between_markers(args.out, table)
    print(table)
    problems = problems_of(rows, cases)
    for problem in problems:
        print(f"reliability: {problem}", file=sys.stderr)
    print(f"reliability: {len(cases)} case(s), {len(problems)} problem(s); table in {args.out}")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
