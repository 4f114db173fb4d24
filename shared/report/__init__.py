"""The fleet report: one self-contained HTML file from a diagnosis or from the state store."""

from shared.report.model import DIAGNOSIS, STORE, FleetReport

__all__ = ["DIAGNOSIS", "STORE", "FleetReport"]
