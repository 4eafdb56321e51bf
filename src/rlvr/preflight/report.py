"""What the preflight found: one :class:`Check` per question, the table that shows them, ``preflight.json``."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

Status = Literal["pass", "warn", "fail", "skip"]


@dataclass
class Check:
    """One check: its ``status``, the figures in a few words (``summary``, the table's row), the ``verdict`` in
    plain words with what to change (said for every check that does not pass), and the numbers behind it."""

    name: str
    status: Status
    summary: str
    verdict: str = ""
    figures: dict[str, Any] = field(default_factory=dict)


@dataclass
class Report:
    """Every check of one job, what the job is (``job``: model, data, loop in a line) and how long the preflight
    took. ``passed`` when no check failed (warnings and skipped checks do not fail it)."""

    job: str
    checks: list[Check]
    seconds: float = 0.0
    phases: dict[str, float] = field(default_factory=dict)  # the preflight's own seconds, by part

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if c.status == "fail"]

    @property
    def passed(self) -> bool:
        return not self.failed

    def check(self, name: str) -> Check:
        """The check called ``name``."""
        return next(c for c in self.checks if c.name == name)

    def verdict(self) -> str:
        if self.failed:
            return (f"FAIL: {len(self.failed)} of {len(self.checks)} checks failed "
                    f"({', '.join(c.name for c in self.failed)}); fix them before paying for the run.")
        warned = [c.name for c in self.checks if c.status == "warn"]
        return "PASS: every check passed" + (f" (warnings: {', '.join(warned)})." if warned else ".")

    def table(self) -> str:
        """The table (one row per check), then the verdict of each check that did not pass, then the overall one."""
        width = max(len(c.name) for c in self.checks)
        lines = [f"Preflight: {self.job}", "", f"{'check':<{width}}  {'status':<6}  figures"]
        lines += [f"{c.name:<{width}}  {c.status.upper():<6}  {c.summary}" for c in self.checks]
        said = [c for c in self.checks if c.verdict and c.status in ("fail", "warn")]
        if said:
            lines += ["", *(f"{c.status.upper()} {c.name}: {c.verdict}" for c in said)]
        parts = ", ".join(f"{k} {v:.1f}" for k, v in self.phases.items())
        lines += ["", f"{self.verdict()} Preflight took {self.seconds:.1f} s" + (f" ({parts})." if parts else ".")]
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {"job": self.job, "passed": self.passed, "verdict": self.verdict(), "seconds": round(self.seconds, 2),
                "phases_s": {k: round(v, 2) for k, v in self.phases.items()},
                "checks": [asdict(c) for c in self.checks]}

    def write(self, run_dir: Path) -> Path:
        """``preflight.json`` in ``run_dir``."""
        run_dir.mkdir(parents=True, exist_ok=True)
        path = run_dir / "preflight.json"
        path.write_text(json.dumps(self.to_json(), indent=2, default=str) + "\n")
        return path
