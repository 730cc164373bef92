"""CSV and Parquet exports through pyarrow: the only module that imports it.

``gateway.analytics.export`` imports this module on the first CSV or Parquet export, so the
gateway and the workers do not carry pyarrow's memory for a feature they may never use.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from sqlalchemy import BigInteger, Boolean, Float, Integer

from gateway.analytics.schema import EXPORT_COLUMNS, events

__all__ = ["ArrowWriter", "arrow_schema"]

_ARROW_TYPES = {Float: pa.float64(), Integer: pa.int64(), BigInteger: pa.int64(), Boolean: pa.bool_()}


def arrow_schema() -> pa.Schema:
    fields = []
    for name in EXPORT_COLUMNS:
        column_type = type(events.c[name].type)
        fields.append(pa.field(name, _ARROW_TYPES.get(column_type, pa.string())))
    return pa.schema(fields)


def _columns(rows: list[tuple[Any, ...]], schema: pa.Schema) -> pa.Table:
    if not rows:
        return schema.empty_table()
    columns = list(zip(*rows, strict=True))
    return pa.Table.from_arrays(
        [pa.array(column, type=field.type) for column, field in zip(columns, schema, strict=True)], schema=schema
    )


class ArrowWriter:
    def __init__(self, out: Path, fmt: Literal["csv", "parquet"]) -> None:
        self.schema = arrow_schema()
        if fmt == "parquet":
            self._writer: Any = pq.ParquetWriter(out, self.schema, compression="zstd")
        else:
            self._writer = pacsv.CSVWriter(out, self.schema)

    def write(self, rows: list[tuple[Any, ...]]) -> None:
        self._writer.write_table(_columns(rows, self.schema))

    def close(self) -> None:
        self._writer.close()
