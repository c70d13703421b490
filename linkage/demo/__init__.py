"""Synthetic raw records of children in England, with ground truth, for demos and benchmarks."""

from linkage.demo.corruptions import ErrorRates
from linkage.demo.deliveries import RawRecord, generate_records, write_delivery

__all__ = ["ErrorRates", "RawRecord", "generate_records", "write_delivery"]
