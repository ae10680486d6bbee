"""The ETL under measurement: the real engine staging the replay server's third parties.

``extract_source`` as a job calls it, for the miclinik source of the shipped settings
(``tests.support.source_for``) pointed at the replay server, with the rate limit lifted and the
throughput settings of the run (``page_size``, ``concurrency``, ``partitions`` and, when given,
``commit_rows``, ``commit_bytes``, ``commit_ms``, ``queue_bytes``). The database was migrated
before this process started; the clock runs from opening the source to the last commit.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

# Settings passed on only when the run sets them: otherwise the engine's own defaults hold.
TUNING = ("commit_rows", "commit_bytes", "commit_ms", "queue_bytes")


async def extract_thirdparties(
    database_url: str,
    base_url: str,
    key: str,
    page_size: int,
    concurrency: int,
    partitions: int,
    tuning: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Stage every third party once into an empty staging database; records/s and how it ended."""
    from etl.db.engine import create_engine
    from etl.logging import configure_logging
    from etl.pipeline.extract import extract_source
    from tests.support import source_for

    configure_logging(fmt="json", level="warning")  # on stderr: stdout carries the result alone
    settings = {name: value for name, value in (tuning or {}).items() if name in TUNING and value is not None}
    source = source_for(
        "miclinik",
        base_url,
        credentials={"api_key": key},
        page_size=page_size,
        concurrency=concurrency,
        rate_limit=1e6,
        partitions=partitions,
        **settings,
    )
    engine = create_engine(database_url)
    try:
        started = time.perf_counter()
        result = await extract_source(engine, source, run_id=str(uuid.uuid4()), streams=["thirdparties"])
        seconds = time.perf_counter() - started
    finally:
        await engine.dispose()
    stream = result.streams[0] if result.streams else None
    counts = stream.counts if stream else None
    return {
        "records": counts.records if counts else 0,
        "new": counts.new if counts else 0,
        "pages": counts.pages if counts else 0,
        "seconds": seconds,
        "rate": (counts.records if counts else 0) / seconds,
        "requests": result.requests,
        "retries": result.retries,
        "status": stream.status if stream else "failed",
        "error": (stream.error if stream else None) or result.error,
    }
