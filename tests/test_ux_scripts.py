"""scripts/ holds files that work where they are used (issue 9)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from tests.conftest import ROOT

TASK_NS = "{http://schemas.microsoft.com/windows/2004/02/mit/task}"



@pytest.mark.parametrize("name, script", [("scalper-task.xml", "scalper-loop.ps1"),
                                          ("scalper-terminal-server-task.xml", "scalper-terminal-server.ps1")])
def test_the_task_scheduler_files_are_task_definitions_that_run_the_scripts(name, script):
    path = ROOT / "scripts" / name
    path.read_bytes().decode("ascii")                       # no encoding surprises on import
    root = ET.parse(path).getroot()
    assert root.tag == f"{TASK_NS}Task" and root.get("version") == "1.2"
    assert root.find(f"{TASK_NS}Triggers/{TASK_NS}LogonTrigger") is not None
    assert root.findtext(f"{TASK_NS}Principals/{TASK_NS}Principal/{TASK_NS}LogonType") == "InteractiveToken"
    assert root.findtext(f"{TASK_NS}Settings/{TASK_NS}MultipleInstancesPolicy") == "IgnoreNew"
    assert root.findtext(f"{TASK_NS}Settings/{TASK_NS}ExecutionTimeLimit") == "PT0S"   # the loop runs for ever
    exec_ = root.find(f"{TASK_NS}Actions/{TASK_NS}Exec")
    assert exec_.findtext(f"{TASK_NS}Command") == "powershell.exe"
    runs = exec_.findtext(f"{TASK_NS}Arguments").split("-File ", 1)[1].strip()
    assert runs.endswith("\\scripts\\" + script) and (ROOT / "scripts" / script).exists()
    # Actions is the one part the schema requires; every child is a known part of a task
    assert {c.tag.removeprefix(TASK_NS) for c in root} <= {"RegistrationInfo", "Triggers", "Settings", "Data",
                                                          "Principals", "Actions"}
    assert not (ROOT / "scripts" / "scalper-task.xml.md").exists()


def test_install_hints_name_what_can_be_installed():
    """`pip install 'scalper[...]'` could pull another project's package from the public index."""
    from scalper.brokers.mt5 import MISSING_PACKAGE
    from scalper.feeds.factory import MT5_MISSING
    from scalper.report.charts import INSTALL_FIX

    for hint in (INSTALL_FIX, MISSING_PACKAGE, MT5_MISSING):
        assert "scalper[" not in hint and "'.[" in hint, hint
    for path in (ROOT / "scalper").rglob("*.py"):
        text = path.read_text()
        assert "pip install 'scalper[" not in text, path
