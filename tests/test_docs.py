"""The docs name real tests and real settings."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).parent.parent


def test_security_table_names_existing_tests():
    text = (ROOT / "docs" / "security.rst").read_text("utf-8")
    named = set(re.findall(r"(test_\w+)``", text))
    sources = "".join(path.read_text("utf-8") for path in (ROOT / "tests").glob("test_*.py"))
    assert named, "the table names no tests"
    assert sorted(name for name in named if f"def {name}(" not in sources) == []
