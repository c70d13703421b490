"""Synthetic raw records about children in England, with ground truth.

For demos, tests and benchmarks: a deterministic population (households, siblings, twins)
recorded by health, education and social care with the errors real agency data has, in one
or two deliveries. The data is synthetic; never mix it with real records.
"""

from linkage.demo.corruptions import ErrorRates
from linkage.demo.deliveries import DEFAULT_TODAY, ChangeRates, first_extract_date, iter_records
from linkage.demo.output import Summary, generate, raw_rows, write_delivery
from linkage.demo.population import Child, population
from linkage.demo.records import SOURCES, RawRecord

__all__ = [
    "DEFAULT_TODAY",
    "SOURCES",
    "ChangeRates",
    "Child",
    "ErrorRates",
    "RawRecord",
    "Summary",
    "first_extract_date",
    "generate",
    "iter_records",
    "population",
    "raw_rows",
    "write_delivery",
]
