"""Column types of the catalog mapped to Spark, and how raw values are parsed into them."""

from __future__ import annotations

import re
import unicodedata

from pyspark.sql import Column
from pyspark.sql import functions as F
from pyspark.sql import types as T

SPARK_TYPES: dict[str, T.DataType] = {
    "string": T.StringType(),
    "double": T.DoubleType(),
    "long": T.LongType(),
    "boolean": T.BooleanType(),
    "timestamp": T.TimestampType(),
    "date": T.DateType(),
}
_NUMERIC = (T.ByteType, T.ShortType, T.IntegerType, T.LongType, T.FloatType, T.DoubleType,
            T.DecimalType)
# Plausible epochs in the documented units, 1900 to 2999: seconds below 1e11 (year 5138 in
# seconds, 1973 in ms), milliseconds from 1e11. Anything else (microseconds, nanoseconds, far
# negatives) converts to null and so is rescued, not guessed.
_EPOCH_SECONDS_FROM = -2_208_988_800  # 1900-01-01
_EPOCH_SECONDS_UNTIL = 32_503_680_000  # 3000-01-01
_EPOCH_MILLIS_FROM = 100_000_000_000
_EPOCH_MILLIS_UNTIL = 32_503_680_000_000
_NESTED = (T.StructType, T.ArrayType, T.MapType)
# Letters and digits of every script are kept (温度 and 湿度 stay two columns, µm is not m);
# everything else (spaces, punctuation, symbols) becomes one underscore.
_INVALID_NAME_CHARS = re.compile(r"[^\w]+")


def spark_type(type_name: str) -> T.DataType:
    return SPARK_TYPES[type_name]


def catalog_type(data_type: T.DataType) -> str:
    """The catalog type name of a Spark type (types outside the catalog are kept as strings)."""
    for name, candidate in SPARK_TYPES.items():
        if candidate == data_type:
            return name
    if isinstance(data_type, (T.ByteType, T.ShortType, T.IntegerType)):
        return "long"
    if isinstance(data_type, (T.FloatType, T.DecimalType)):
        return "double"
    if isinstance(data_type, T.TimestampNTZType):
        return "timestamp"
    return "string"


def sanitize_column_name(name: str) -> str:
    """Delta-safe, lower-case column names, so ``Temperature `` and ``temperature`` match;
    letters of every script are kept as they are (in Unicode's composed form), so names in
    other scripts stay apart."""
    text = unicodedata.normalize("NFC", name.strip().lstrip("\ufeff"))
    cleaned = _INVALID_NAME_CHARS.sub("_", text).strip("_").lower()
    return cleaned or "unnamed"


def unique_names(names: list[str]) -> list[str]:
    """Sanitized names with ``_2``, ``_3`` … appended to repeats."""
    seen: dict[str, int] = {}
    result = []
    for raw in names:
        name = sanitize_column_name(raw)
        count = seen.get(name, 0) + 1
        seen[name] = count
        result.append(name if count == 1 else f"{name}_{count}")
    return result


def parse_value(column: Column, source_type: T.DataType, target: str) -> Column:
    """``column`` converted to the catalog type ``target``; null where it does not convert."""
    wanted = spark_type(target)
    if source_type == wanted:
        return column
    if target == "string":
        if isinstance(source_type, _NESTED):
            return F.to_json(column)  # JSON text that round-trips, not Spark's "{1.5, a}"
        return column.cast("string")
    if target == "timestamp":
        return _parse_timestamp(column, source_type)
    # Casts name their type: a type object sent over Spark Connect carries an explicit string
    # collation into the table's schema, which other Delta readers (delta-rs) refuse.
    if isinstance(source_type, _NUMERIC) and target in ("double", "long"):
        return column.try_cast(target)
    # Spark's string casts ignore surrounding white space already.
    text = column.cast("string")
    parsed = text.try_cast(target)
    if target != "double":
        return parsed
    # "1e400" casts to infinity: no double holds it, so it is rescued as written. Only a text
    # with an exponent, a letter of "Infinity" or over 300 characters can be one, and only
    # such a text pays for a second look (a condition that repeats the parse parses twice).
    risky = (text.contains("e") | text.contains("E") | text.contains("n") | text.contains("N")
             | (F.length(text) > 300))
    return F.when(risky, F.when(finite(parsed), parsed)).otherwise(parsed)


def finite(number: Column) -> Column:
    """True for a double that is neither infinity nor -infinity (NaN is kept as it is)."""
    return F.abs(number) != F.lit(float("inf"))


def valid_text(column: Column) -> Column:
    """True where a Parquet string or binary value is valid UTF-8 (text any reader can load)."""
    return F.is_valid_utf8(column.cast("string"))


def _parse_timestamp(column: Column, source_type: T.DataType) -> Column:
    """ISO 8601 with or without an offset (naive means UTC), or epoch seconds / milliseconds."""
    if isinstance(source_type, (T.TimestampType, T.TimestampNTZType, T.DateType)):
        return column.cast("timestamp")
    text = column.cast("string")
    number = text.try_cast("long")
    from_epoch = F.when(
        (number >= _EPOCH_SECONDS_FROM) & (number < _EPOCH_SECONDS_UNTIL),
        F.timestamp_seconds(number),
    ).when((number >= _EPOCH_MILLIS_FROM) & (number < _EPOCH_MILLIS_UNTIL),
           F.timestamp_millis(number))
    # A time of day has a colon and a whole number never does: ISO text goes straight to the
    # timestamp cast (a failing try_cast to bigint on every ISO row costs more than all the
    # rest of its parsing), numbers straight to the epoch rule, so "2026" is not read as a year.
    iso = F.when(_four_digit_year(text), text).try_cast("timestamp")
    return F.when(text.contains(":"), iso).otherwise(F.coalesce(from_epoch, iso))


def _four_digit_year(text: Column) -> Column:
    """ISO text whose year is 0001-9999: Spark also parses ``-2026-…`` and ``+12026-…``, which no
    reader of the table (pandas, the checks) can hold, so such a value is rescued as written.
    Told from the text (its fifth character ends the year), which costs less than looking at
    the parsed timestamp again."""
    start = F.ltrim(text)
    return (F.substring(start, 5, 1) == F.lit("-")) & (F.substring(start, 1, 4) != F.lit("0000"))
