"""Maintenance windows: weekly wall-clock intervals in an IANA time zone.

``days`` are the days a window *opens*; a window whose end is not after its start runs past
midnight (``mon 22:00-04:00`` is Monday 22:00 to Tuesday 04:00). ``end: "24:00"`` is midnight.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

MINUTES_PER_DAY = 24 * 60


@dataclass(frozen=True)
class MaintenanceWindow:
    days: frozenset[int]  # 0 = Monday, as datetime.weekday()
    start: int  # minutes after local midnight
    end: int  # minutes after local midnight, up to 1440
    timezone: str = "UTC"

    @property
    def crosses_midnight(self) -> bool:
        return self.end <= self.start

    def contains(self, now: datetime) -> bool:
        local = now.astimezone(ZoneInfo(self.timezone))
        minute = local.hour * 60 + local.minute
        today, yesterday = local.weekday(), (local.weekday() - 1) % 7
        if not self.crosses_midnight:
            return today in self.days and self.start <= minute < self.end
        return (today in self.days and minute >= self.start) or (
            yesterday in self.days and minute < self.end
        )

    def next_start(self, now: datetime) -> datetime:
        """When this window next opens after ``now`` (aware, in the window's time zone)."""
        zone = ZoneInfo(self.timezone)
        local = now.astimezone(zone)
        opens = time(self.start // 60, self.start % 60)
        for offset in range(8):
            day = local.date() + timedelta(days=offset)
            candidate = datetime.combine(day, opens, tzinfo=zone)
            if day.weekday() in self.days and candidate > local:
                return candidate
        raise AssertionError("a window with at least one day opens within a week")

    def describe(self) -> str:
        names = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
        days = ",".join(names[d] for d in sorted(self.days))
        return f"{days} {_clock(self.start)}-{_clock(self.end)} {self.timezone}"


def parse_clock(value: str) -> int:
    hours, minutes = value.split(":")
    return int(hours) * 60 + int(minutes)


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"
