"""The default monitoring protocol of PROTOCOL.md, as data a clinic may later override."""

from typing import Any

DEFAULT_PROTOCOL_VERSION = 1

DEFAULT_PROTOCOL: dict[str, Any] = {
    "version": DEFAULT_PROTOCOL_VERSION,
    # Baseline pressure above which `start` needs a clinician's review (esketamine label).
    "screening": {"systolic_max": 140, "diastolic_max": 90},
}
