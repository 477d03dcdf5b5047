"""Settings declared once, typed, checked at start with the variable's name (pure: no TensorFlow)."""

import importlib.util
import os
import subprocess
import sys

import pytest

from support import REPO
from explorer.settings import SETTINGS, Settings, SettingsError, settings


def test_every_setting_has_a_field_and_defaults_follow_the_checkout():
    assert [f for f in Settings.__dataclass_fields__] == list(SETTINGS)
    s = settings({})
    assert s.max_epochs == 30 and s.disk_budget_gb == 5.0 and s.open is False and s.owner_token is None
    assert s.cache_dir == REPO / "cached_models" and s.stages_dir == REPO / "user_data" / "stages"
    s = settings({"EXPLORER_DATA_DIR": "/tmp/x", "EXPLORER_MAX_EPOCHS": "12", "EXPLORER_OPEN": "1"})
    assert (s.stages_dir, s.max_epochs, s.open) == (REPO.__class__("/tmp/x/stages"), 12, True)


@pytest.mark.parametrize("env,value,message", [
    ("EXPLORER_MAX_EPOCHS", "abc", "EXPLORER_MAX_EPOCHS must be a whole number (got 'abc')"),
    ("EXPLORER_MAX_EPOCHS", "500", "EXPLORER_MAX_EPOCHS must be from 1 to 100"),
    ("EXPLORER_DISK_BUDGET_GB", "-3", "EXPLORER_DISK_BUDGET_GB must be from 0.001"),
    ("EXPLORER_OWNER_TOKEN", "", "EXPLORER_OWNER_TOKEN is set but empty"),
    ("EXPLORER_OPEN", "maybe", "EXPLORER_OPEN must be 1 or 0"),
])
def test_a_bad_value_is_refused_naming_the_variable(env, value, message):
    with pytest.raises(SettingsError, match=None) as raised:
        settings({env: value})
    assert message in str(raised.value)


def test_the_cli_stops_at_start_on_a_bad_setting():
    done = subprocess.run([sys.executable, "-m", "explorer", "list"], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "EXPLORER_MAX_EPOCHS": "abc"})
    assert done.returncode == 2 and "EXPLORER_MAX_EPOCHS must be a whole number" in done.stderr


def test_the_settings_page_is_generated_from_the_declarations():
    spec = importlib.util.spec_from_file_location("settings_doc", REPO / "scripts" / "settings_doc.py")
    doc = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(doc)
    assert (REPO / "docs" / "settings.md").read_text() == doc.render(), "run scripts/settings_doc.py"
    assert all(f"`{s.env}`" in doc.render() for s in SETTINGS.values())
