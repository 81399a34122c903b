"""`make bench`: run every benchmark module in bench/ and print one table.

Each module ``bench/<name>.py`` exposes ``run(args) -> list[dict]``; a row has ``benchmark``, ``n``,
``median_ms``, ``baseline_ms`` (the slower way, measured in the same run), ``ratio`` and ``target``. Benchmarks run
on the database DATABASE_URL points at (PostgreSQL for the real figures) inside a throwaway workspace that they
delete afterwards. ``python -m bench customers_upsert --scale 1`` runs one module at its full size.
"""

import argparse
import importlib
import os
import pkgutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings")


def main() -> int:
    parser = argparse.ArgumentParser(prog="make bench")
    parser.add_argument("only", nargs="*", help="module names to run (default: all)")
    parser.add_argument(
        "--scale",
        type=float,
        default=0.1,
        help="fraction of each benchmark's full target size (1 = the sizes the issues name)",
    )
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    names = [m.name for m in pkgutil.iter_modules([str(Path(__file__).parent)]) if not m.name.startswith("_")]
    names = [n for n in names if n != "common" and (not args.only or n in args.only)]
    engine = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
    print(f"database: {engine}   scale: {args.scale}   repeat: {args.repeat}")
    rows: list[dict] = []
    for name in sorted(names):
        module = importlib.import_module(f"bench.{name}")
        started = time.perf_counter()
        try:
            produced = module.run(args)
        except Exception as error:  # noqa: BLE001 - one broken benchmark must not hide the others' figures
            produced = [{"benchmark": f"{name} FAILED: {error!r}"[:100], "n": 0, "median_ms": float("nan")}]
        for row in produced:
            row.setdefault("module", name)
        rows.extend(produced)
        print(f"  {name}: {time.perf_counter() - started:.1f} s", file=sys.stderr)
    print_table(rows)
    return 0


def print_table(rows: list[dict]) -> None:
    headers = ["benchmark", "n", "median_ms", "baseline_ms", "ratio", "target"]

    def fmt(value):
        if value is None:
            return "-"
        if isinstance(value, float):
            return f"{value:,.1f}"
        if isinstance(value, int):
            return f"{value:,}"
        return str(value)

    table = [[fmt(row.get(h)) for h in headers] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in table)) if table else len(h) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    print(line)
    print("-" * len(line))
    for r in table:
        print(
            "  ".join(
                c.ljust(w) if i == 0 or i == 5 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))
            )
        )


if __name__ == "__main__":
    sys.exit(main())
