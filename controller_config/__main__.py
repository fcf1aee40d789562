"""python -m controller_config: the AWX/Tower configuration of the collection, generated and checked.

    python -m controller_config generate --inventory inventory/example [--settings FILE]
                                         [--out build/controller/controller_configuration.yml] [--now ISO]
    python -m controller_config validate build/controller/controller_configuration.yml
"""
from __future__ import annotations

import argparse
import sys
from datetime import datetime, timezone
from pathlib import Path

from .inventory import quiet_ansible
from .sources import REPO, SourceError

DEFAULT_OUT = REPO / "build" / "controller" / "controller_configuration.yml"


def _now(text: str | None) -> datetime:
    if not text:
        return datetime.now(timezone.utc).replace(microsecond=0)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise SourceError(f"--now {text!r} is not an ISO 8601 date and time") from None
    if moment.tzinfo is None:
        raise SourceError(f"--now {text!r} needs a UTC offset (for example 2027-01-01T00:00:00+00:00)")
    return moment.astimezone(timezone.utc)


def _generate(args: argparse.Namespace) -> int:
    from .build import generate, load_settings, render_yaml  # noqa: PLC0415 - after quiet_ansible()

    now = _now(args.now)
    generated = generate(REPO, Path(args.inventory).resolve(), load_settings(args.settings), now)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    partial.write_text(render_yaml(generated, inventory=args.inventory, now=now))
    partial.replace(out)
    counts = ", ".join(f"{len(items)} {name.removeprefix('controller_')}" for name, items in generated.config.items())
    print(f"wrote {out}: {counts}")
    for line in generated.skipped:
        print(f"  {line}")
    if generated.vault_variables:
        print(f"  vault variables to define: {', '.join(generated.vault_variables)}")
    return 0


def _validate(args: argparse.Namespace) -> int:
    from .build import load_yaml  # noqa: PLC0415
    from .validate import validate  # noqa: PLC0415

    config = load_yaml(Path(args.file).read_text())
    problems = validate(config)
    for problem in problems:
        print(f"  {problem}")
    total = sum(len(items or []) for items in config.values())
    print(f"{args.file}: {total} objects, {len(problems)} problem(s)")
    return 1 if problems else 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m controller_config", description=__doc__.split("\n", maxsplit=1)[0])
    commands = parser.add_subparsers(dest="command", required=True)
    make = commands.add_parser("generate", help="write the configuration from the collection and an inventory")
    make.add_argument("--inventory", required=True, help="inventory whose estates get job templates")
    make.add_argument("--settings", help="YAML file overriding controller_config/defaults.yml")
    make.add_argument("--out", default=str(DEFAULT_OUT))
    make.add_argument("--now", help="generate as of this time (ISO 8601 with offset); default now")
    check = commands.add_parser("validate", help="check a configuration offline with the awx.awx modules")
    check.add_argument("file")
    args = parser.parse_args(argv)
    quiet_ansible()
    try:
        return _generate(args) if args.command == "generate" else _validate(args)
    except SourceError as exc:
        print(f"controller_config: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
