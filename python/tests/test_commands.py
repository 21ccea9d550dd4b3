"""The pip-installed `ringflush` command is the whole CLI: `demo` and
`bench` start the flusher and their workers through this interpreter
(`-m ringflush`), not through a binary a pip install does not have."""

import os
import shutil
import subprocess
import sys


def test_demo_runs_from_the_python_package(tmp_path):
    out = subprocess.run([sys.executable, "-m", "ringflush", "demo", "--seconds", "1",
                          "--workers", "2"], capture_output=True, text=True, timeout=300,
                         cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "can't open file" not in out.stderr


def test_the_console_script_runs_bench(tmp_path):
    script = shutil.which("ringflush", path=os.path.dirname(sys.executable)) or shutil.which("ringflush")
    command = [script] if script else [sys.executable, "-m", "ringflush"]
    out = subprocess.run([*command, "bench", "--producers", "1", "--seconds", "1"],
                         capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
