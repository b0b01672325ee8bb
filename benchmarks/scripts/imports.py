"""Print, as JSON, which heavy modules ``import fastquant, fastquant.reference`` loads."""

import json
import sys

import fastquant  # noqa: F401
import fastquant.reference  # noqa: F401

if __name__ == "__main__":
    print(json.dumps(sorted(m for m in ("numba", "llvmlite", "PIL") if m in sys.modules)))
