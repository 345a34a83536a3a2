"""Generates the gRPC stubs from taskd's proto files while the package builds.

The proto files are the repository's own (../../proto) when building from a
checkout, or the copy an sdist carries (./proto). The stubs land in the
package as taskd/v1/*_pb2.py, which is where their generated imports
(`from taskd.v1 import task_pb2`) look for each other.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist

HERE = Path(__file__).resolve().parent
PROTO_FILES = [
    "task.proto",
    "task_service.proto",
    "system_service.proto",
    "worker_service.proto",
    "schedule_service.proto",
]


def proto_root() -> Path:
    for candidate in (HERE / "proto", HERE.parent.parent / "proto"):
        if (candidate / "taskd" / "v1" / "task.proto").is_file():
            return candidate
    raise RuntimeError("taskd's proto files are not found next to setup.py nor at ../../proto")


def generate(out_dir: Path) -> None:
    from grpc_tools import protoc  # a build requirement, see pyproject.toml

    root = proto_root()
    include = Path(protoc.__file__).resolve().parent / "_proto"
    target = out_dir / "taskd" / "v1"
    target.mkdir(parents=True, exist_ok=True)
    (target / "__init__.py").write_text('"""Stubs generated from proto/taskd/v1 at build time."""\n')
    args = [
        "grpc_tools.protoc",
        f"-I{root}",
        f"-I{include}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
    ] + [str(root / "taskd" / "v1" / name) for name in PROTO_FILES]
    if protoc.main(args) != 0:
        raise RuntimeError("protoc failed on taskd's proto files")


class BuildWithStubs(build_py):
    def run(self):
        super().run()
        generate(Path(self.build_lib))


class SdistWithProtos(sdist):
    """Carries the proto files, so that the sdist builds on its own."""

    def make_release_tree(self, base_dir, files):
        super().make_release_tree(base_dir, files)
        source = proto_root() / "taskd" / "v1"
        target = Path(base_dir) / "proto" / "taskd" / "v1"
        target.mkdir(parents=True, exist_ok=True)
        for name in PROTO_FILES:
            shutil.copy(source / name, target / name)


setup(cmdclass={"build_py": BuildWithStubs, "sdist": SdistWithProtos})
