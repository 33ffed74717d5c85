"""What every loader returns."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class LoadResult:
    """Counts and timing of one load.

    Example:
        >>> r = LoadResult(target="warehouse.SalesByCategory", n_inserted=3)
        >>> r.n_written
        3
    """

    target: str = ""
    n_inserted: int = 0
    n_updated: int = 0
    n_deleted: int = 0
    duration_s: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def n_written(self) -> int:
        """Rows inserted plus rows updated."""
        return self.n_inserted + self.n_updated

    def as_dict(self) -> dict[str, Any]:
        """A JSON-serialisable copy."""
        return asdict(self)
