"""Node refreshes take only the request budget nothing else needs.

A running cluster's nodes are seen only through GetRayCluster, one call per cluster,
while its state comes with the workspace's list sweep. At 2,000 running clusters a
refresh every 30 s would be 4,000 Gets a minute, over three times a 20 req/s budget,
and every job and cluster state would wait behind them. So a refresh whose only reason
is the nodes (the list shows nothing new) is granted only while the budget holds more
than a reserve kept for sweeps, new refs and changed refs; refused ones keep their age
and ask again at their next check, the oldest first. A cluster whose list entry
changed, or a new ref, is read at once as before: that read shows the nodes too.
"""

from __future__ import annotations

from typing import Protocol

from rayref.emr.budget import RequestBudget

# Share of the budget's burst kept for everything but node refreshes.
RESERVE_SHARE = 0.5


class NodeRefreshBudget(Protocol):
    def take(self) -> bool:
        """Whether one node refresh may run now (counted until `give_back`)."""
        ...

    def give_back(self) -> None:
        """The refresh granted by `take` is over."""
        ...


class Unlimited:
    """Every refresh granted (unit tests of the sweeps that are not about the budget)."""

    def take(self) -> bool:
        return True

    def give_back(self) -> None:
        return None


class SpareBudget:
    """Grants a refresh when the bucket holds a token beyond the reserve and beyond the
    refreshes already granted but not finished (a batch decides many at once, before
    any of them has drawn its token)."""

    def __init__(self, budget: RequestBudget, reserve_share: float = RESERVE_SHARE) -> None:
        self._budget = budget
        self._reserve = reserve_share * budget.burst
        self.outstanding = 0
        self.granted = 0
        self.deferred = 0

    def take(self) -> bool:
        if self._budget.tokens - self.outstanding - self._reserve < 1:
            self.deferred += 1
            return False
        self.outstanding += 1
        self.granted += 1
        return True

    def give_back(self) -> None:
        self.outstanding = max(0, self.outstanding - 1)
