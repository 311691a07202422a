"""How an environment variable's text becomes a value: bounded numbers and booleans.

Each parser takes the variable's text (empty: use ``default``) and its name, and raises one
``ConfigurationError`` line that names the variable and what it accepts.
"""

from __future__ import annotations

from manufacturing_ingest.errors import ConfigurationError


def whole_number(text: str, default: int, name: str, low: int, high: int) -> int:
    return _bounded(text, default, name, low, high, int, "a whole number")


def seconds(text: str, default: float, name: str, low: float, high: float) -> float:
    return _bounded(text, default, name, low, high, float, "a number of seconds")


def _bounded(text, default, name, low, high, parse, what):
    """``text`` parsed and within [low, high]; empty means ``default``; else one line says so."""
    if not text:
        return default
    try:
        value = parse(text)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise ConfigurationError(f"{name}={text!r} is not {what} from {low} to {high}")
    return value


def boolean(text: str, default: bool, name: str) -> bool:
    if not text:
        return default
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise ConfigurationError(f"{name}={text!r} is not true or false")
