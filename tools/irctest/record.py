"""Writes the irctest pass counts into docs/compatibility.md (between markers).

Called by tools/run-irctest after a full run; everything outside the markers
is left as written by hand.
"""

from __future__ import annotations

import argparse
import datetime
from pathlib import Path

BEGIN = "<!-- irctest-results:begin -->"
END = "<!-- irctest-results:end -->"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("doc", type=Path)
    parser.add_argument("--revision", required=True)
    parser.add_argument("--ngircd", required=True)
    parser.add_argument("--markers", required=True)
    parser.add_argument("--direct", nargs=4, type=int, required=True)
    parser.add_argument("--sidecar", nargs=4, type=int, required=True)
    args = parser.parse_args()
    today = datetime.date.today().isoformat()
    rows = [
        "| run | passed | failed | skipped | xfailed |",
        "| --- | --- | --- | --- | --- |",
        "| ngIRCd directly | {} | {} | {} | {} |".format(*args.direct),
        "| ngIRCd behind ChatGuard | {} | {} | {} | {} |".format(*args.sidecar),
    ]
    block = "\n".join(
        [
            BEGIN,
            f"Last run: {today}, irctest `{args.revision}`, {args.ngircd}, "
            f'selection `-m "{args.markers}"`.',
            "",
            *rows,
            END,
        ]
    )
    text = args.doc.read_text(encoding="utf-8")
    start, end = text.index(BEGIN), text.index(END) + len(END)
    args.doc.write_text(text[:start] + block + text[end:], encoding="utf-8")


if __name__ == "__main__":
    main()
