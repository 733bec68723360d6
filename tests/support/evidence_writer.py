"""A writer process for the crash test: appends audit records until killed.

Usage: ``python -m tests.support.evidence_writer DATA_DIR FSYNC``. Prints the
id of each record on its own line as soon as ``audit`` acknowledges it (that
is, once it is durable), so the parent knows exactly what was acknowledged
when it sends SIGKILL.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from chatguard.audit import AuditEntry
from chatguard.config import EvidenceConfig
from chatguard.evidence.log import EvidenceLog
from chatguard.metrics import Metrics


async def main(data_dir: str, fsync: str) -> None:
    config = EvidenceConfig(
        enabled=True, fsync=fsync, segment_bytes=8192, checkpoint_interval=0.0, purge_interval=0.0
    )  # type: ignore[arg-type]
    log = EvidenceLog(config, Path(data_dir), "crash-test", Metrics())
    await log.start()
    print("ready", flush=True)
    n = 0

    async def one(i: int) -> None:
        entry = AuditEntry(0.0, "writer", "note", f"case:{i}", "x" * (i % 300))
        record_id = await log.audit(entry)
        sys.stdout.write(record_id + "\n")
        sys.stdout.flush()

    while True:
        # Several in flight at once, so batches are group-committed.
        await asyncio.gather(*(one(n + k) for k in range(8)))
        n += 8
        if n % 64 == 0:
            await log.checkpoint()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
