"""Check that installing driftgate leaves a runtime's packages as the runtime ships them.

Usage: python runtime_unchanged.py <constraints/runtimes/X.txt> [pip-install-report.json]

With a report (``pip install --dry-run --report``, the plan of a plain ``pip install <wheel>``
as a job task's library install runs it), fails if pip would install another version of any
runtime package; then fails if any runtime package installed now differs from the file.
"""
import json
import re
import sys
from importlib.metadata import PackageNotFoundError, version


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pinned(path: str) -> dict[str, str]:
    out = {}
    for line in open(path):
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, ver = line.split("==", 1)
            out[norm(name.split("[", 1)[0])] = ver.strip()
    return out


def main() -> int:
    pins = pinned(sys.argv[1])
    problems = []
    if len(sys.argv) > 2:
        report = json.load(open(sys.argv[2]))
        for item in report.get("install", []):
            meta = item["metadata"]
            name = norm(meta["name"])
            if name in pins and meta["version"] != pins[name]:
                problems.append(f"pip would replace {name} {pins[name]} with {meta['version']}")
    for name, want in pins.items():
        try:
            have = version(name)
        except PackageNotFoundError:
            problems.append(f"{name} {want} is not installed")
            continue
        if have != want:
            problems.append(f"{name} is {have}, the runtime ships {want}")
    for p in problems:
        print(f"runtime package changed: {p}", file=sys.stderr)
    if not problems:
        print(f"{len(pins)} runtime packages unchanged")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
