"""Every Python block of the README and of docs/*.md, run as a reader runs
them: each in a process of its own against a fresh taskd (the address in
the text replaced by the server's), workers first and in the background,
then the others in order. Each must exit 0 in time; workers stop cleanly on
SIGTERM. A block whose first line is `# not run: <why>` (one that needs a
TLS server, say) is compiled but not run."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import List

import pytest

from conftest import REPO, Server

DOCUMENTS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)
ADDRESSES = ("127.0.0.1:50051", "localhost:50051")


def blocks(document: Path) -> List[str]:
    return BLOCK.findall(document.read_text())


def is_worker(code: str) -> bool:
    return "worker.run()" in code


def runnable(code: str) -> bool:
    return not code.lstrip().startswith("# not run:")


def test_the_readme_shows_a_worker_and_a_client_that_run():
    readme = [code for code in blocks(REPO / "README.md") if runnable(code)]
    assert any(is_worker(code) for code in readme), "the README's quickstart has a worker"
    assert any(not is_worker(code) for code in readme), "and a client of it"


@pytest.mark.parametrize(
    "document",
    [document for document in DOCUMENTS if blocks(document)],
    ids=lambda document: str(document.relative_to(REPO)),
)
def test_every_python_block_runs_as_written(document: Path):
    codes = blocks(document)
    for index, code in enumerate(codes):
        compile(code, f"{document.name} block {index + 1}", "exec")
    server = Server()
    directory = Path(tempfile.mkdtemp(prefix="taskd-docs-"))
    workers = []
    try:

        def script(index: int, code: str) -> Path:
            for address in ADDRESSES:
                code = code.replace(address, server.address)
            path = directory / f"block{index + 1}.py"
            path.write_text(code)
            return path

        for index, code in enumerate(codes):
            if runnable(code) and is_worker(code):
                workers.append(
                    (
                        index,
                        subprocess.Popen(
                            [sys.executable, str(script(index, code))],
                            stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT,
                            text=True,
                        ),
                    )
                )
        for index, code in enumerate(codes):
            if not runnable(code) or is_worker(code):
                continue
            try:
                ran = subprocess.run(
                    [sys.executable, str(script(index, code))], capture_output=True, text=True, timeout=60
                )
            except subprocess.TimeoutExpired as timeout:
                pytest.fail(f"{document.name} block {index + 1} ran over 60 s:\n{timeout.output}\n{timeout.stderr}")
            assert ran.returncode == 0, f"{document.name} block {index + 1}:\n{ran.stdout}\n{ran.stderr}"
        for index, worker in workers:
            assert worker.poll() is None, f"{document.name} block {index + 1} (a worker) stopped early:\n{worker.stdout.read()}"
            worker.send_signal(signal.SIGTERM)
            said, _ = worker.communicate(timeout=30)
            assert worker.returncode == 0, f"{document.name} block {index + 1} (a worker):\n{said}"
    finally:
        for _, worker in workers:
            if worker.poll() is None:
                worker.kill()
        server.stop()
