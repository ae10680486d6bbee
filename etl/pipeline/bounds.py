"""How far one pass over a stream may go before the engine stops it: bounds on records and pages.

A server whose ids rise forever, or whose cursor moves on without end, would otherwise hold a
scan for ever and, were it to end, feed its deletions. The bound is relative to what is known
of the stream: ``factor`` x the larger of its live staged rows and the server's stated total,
plus ``slack``. A stream with no live rows and no stated total (a first scan) has no record
bound; the stall timeout alone bounds it (a first scan of 2M Dolibarr orders is legitimate).

Pages are bounded so that a server answering pages of nothing while moving its cursor stops too:
a server may serve a tenth of the page size asked (page caps, §4.5 of protocols.md), hence x10.
A stated total proves nothing by itself (a server may claim 10**15 rows and serve the same page
for ever), so rows a pass receives *again* are bounded too, whatever the total: by ``factor`` x
the larger of the live rows and the distinct rows the pass received, + slack. Rows shifting under
offset paging repeat at most the rows deleted mid-scan; a Microbizz chunk sequence restarted
after a refused resumekey repeats what it had read (``resumekey_restarts`` times at most).

A pass out of bounds is dropped, not resumed: its checkpoint would stop every later run at once.
Rows it staged stay (a later complete full scan that does not see them holds or marks them).

Pure: no I/O here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from etl.http.errors import FatalError

PAGE_SHORTFALL = 10  # pages may hold a tenth of the page size asked (a server's own cap)
PAGE_SLACK = 100


class ScanOutOfBounds(FatalError):
    """A pass read more than the stream's bound allows: it stops with nothing deleted, resumable."""

    kind = "out_of_bounds"


@dataclass(frozen=True)
class ScanBound:
    """The settings of a stream's bound; :meth:`check` raises when a page would pass it."""

    factor: float
    slack: int
    page_size: int

    def records_limit(self, live: int, total: int | None) -> int | None:
        """The most records a pass may read, or None when nothing is known yet to bound it by."""
        known = max(live, total or 0)
        if known == 0 and total is None:
            return None
        return int(self.factor * known) + self.slack

    def pages_limit(self, records_limit: int | None) -> int | None:
        """The most pages a pass may read."""
        if records_limit is None:
            return None
        return math.ceil(records_limit / max(self.page_size, 1)) * PAGE_SHORTFALL + PAGE_SLACK

    def check_repeats(self, *, repeats: int, distinct: int, live: int) -> None:
        """Raise :class:`ScanOutOfBounds` when a pass received rows it had already received more often
        than the bound allows (a server serving the same rows again and again)."""
        limit = int(self.factor * max(live, distinct)) + self.slack
        if repeats > limit:
            raise ScanOutOfBounds(
                f"the pass received rows it already had {repeats} times, past its bound ({limit}: "
                f"{self.factor:g} x the larger of {live} live and {distinct} distinct rows, + {self.slack}): "
                f"the server repeats itself{_DROPPED}"
            )

    def check(self, *, received: int, pages: int, live: int, total: int | None) -> None:
        """Raise :class:`ScanOutOfBounds` when ``received`` records or ``pages`` pages (this page
        included) pass the bound."""
        limit = self.records_limit(live, total)
        if limit is None:
            return
        page_limit = self.pages_limit(limit)
        assert page_limit is not None
        if received <= limit and pages <= page_limit:
            return
        known = f"{live} live rows" + (f", the server's total {total}" if total is not None else "")
        over = f"{received} records" if received > limit else f"{pages} pages"
        raise ScanOutOfBounds(
            f"the pass read {over}, past its bound ({limit} records, {page_limit} pages: "
            f"{self.factor:g} x the larger of {known}, + {self.slack}){_DROPPED}; if the stream really "
            "grew, raise scan_bound_factor or scan_bound_slack"
        )


_DROPPED = "; stopped with nothing deleted, the pass dropped (the next run starts a new scan)"
