"""The committed configuration reference is the one the models generate."""
from pathlib import Path

from driftgate.reference import render_reference

REPO = Path(__file__).resolve().parent.parent


def test_configuration_reference_is_current():
    text = render_reference()
    assert "| `gate.rules` |" in text and "| `monitor.table_name` |" in text
    committed = (REPO / "docs" / "configuration.md").read_text()
    assert committed == text, "regenerate: python -m driftgate.reference > docs/configuration.md"
