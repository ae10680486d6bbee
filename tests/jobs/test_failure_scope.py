"""A refused call ends what it concerns: one stream, never its source's other streams or other sources."""

from __future__ import annotations

from rich.console import Console

from etl.progress import summary_table
from etl.simulators.billmanager import BillmanagerOptions
from etl.sources import REGISTRY
from jobs.extract import run_extract
from tests.support import shipped_settings, simulators, source_for, staged_keys, truth_keys

# The stream each source's server refuses, and the server's reason the summary must carry.
REFUSED = {
    "miclinik": ("users", "You are not allowed to read list of users"),
    "mikrobill": ("products", "API.GetPlans"),
    "microbizz": ("users", "Unknown command GetEmployeesByLastChange"),
    "billmanager": ("pricelist", "func=pricelist: the function is not available on this installation"),
}


async def test_each_refused_stream_fails_alone_and_the_summary_names_it(migrated_url: str, engine) -> None:
    """With one refused stream per system (a key without the users right, a MikroBILL path the core lacks, an
    unknown Microbizz command, a missing BILLmanager function), every other stream stages all its records."""
    kinds = list(REFUSED)
    options = {"billmanager": BillmanagerOptions(disabled_funcs=frozenset({"pricelist"}))}
    async with simulators(kinds, scale=120, options=options) as sims:
        tariffs = {"list": "API.GetPlans", "base": "API.Tariff", "properties": ["Name"]}
        sources = [
            source_for("miclinik", sims["miclinik"].base_url, credentials={"api_key": "demo-dolibarr-readonly-key"}),
            source_for(
                "mikrobill", sims["mikrobill"].base_url, options=_options("mikrobill", catalogues={"t": tariffs})
            ),
            source_for("microbizz", sims["microbizz"].base_url, options={"users_command": "GetEmployeesByLastChange"}),
            source_for("billmanager", sims["billmanager"].base_url),
        ]
        settings = shipped_settings(migrated_url).model_copy(update={"sources": sources})
        report = await run_extract(settings)
        truth = {kind: sims[kind].state for kind in kinds}
    assert report.status == "partial"
    failed = {(r.source, r.stream): r.error for r in report.results if r.failed}
    assert set(failed) == {(kind, stream) for kind, (stream, _) in REFUSED.items()}
    for kind, (stream, reason) in REFUSED.items():
        assert reason in failed[(kind, stream)], failed[(kind, stream)]
        staged = {r.stream for r in report.results if r.source == kind and not r.failed}
        assert staged == set(REGISTRY[kind].stream_names()) - {stream}
        entities = {s.entity for s in REGISTRY[kind].streams if s.name != stream}
        served = truth_keys(truth[kind], entities)
        assert {key for key in await staged_keys(engine, kind) if key[0] in entities} == served
    console = Console(record=True, width=1000)
    console.print(summary_table(report.results, report.retries))
    text = console.export_text()
    for kind, (stream, reason) in REFUSED.items():
        line = next(line for line in text.splitlines() if f" {kind} " in line and f" {stream} " in line)
        assert "failed" in line and reason in line


def _options(kind: str, **changes: object) -> dict:
    shipped = next(s for s in shipped_settings().sources if s.kind == kind).options
    return shipped.model_dump() | changes
