"""Configures, builds and runs the C++-only tests of the core (cpp/tests/*.cpp)."""

import importlib
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.cpp

REPO_ROOT = Path(__file__).resolve().parents[1]
# Each test program and the fewest checks it must report passing.
PROGRAMS = {"fastgd_core_tests": 21, "fastgd_no_allocation_tests": 48, "fastgd_core_tests_x86_64_v3": 21}
# Built only for x86-64 by a compiler that knows -march=x86-64-v3; exits 77 on a CPU without AVX2.
OPTIONAL_PROGRAMS = {"fastgd_core_tests_x86_64_v3"}
SKIP_EXIT_CODE = 77
SUMMARY_LINE = re.compile(r"^(\d+) passed, (\d+) failed$", re.MULTILINE)
CONFIGURE_TIMEOUT = 300
BUILD_TIMEOUT = 900
RUN_TIMEOUT = 300


def find_tool(module_name, directory_attribute, program):
    """The program shipped by a PyPI package (cmake, ninja) if importable, else the one on PATH."""
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return shutil.which(program)
    bundled = shutil.which(program, path=str(getattr(module, directory_attribute, "")))
    return bundled or shutil.which(program)


def as_text(stream):
    # TimeoutExpired carries bytes even when the run asked for text.
    if isinstance(stream, bytes):
        return stream.decode(errors="replace")
    return stream or ""


def run(command, timeout, cwd=None):
    """Runs command; returns (exit code or None on timeout, stdout and stderr together)."""
    try:
        done = subprocess.run(
            command, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as timeout_error:
        output = as_text(timeout_error.stdout) + as_text(timeout_error.stderr)
        return None, f"timed out after {timeout} s\n{output}"
    return done.returncode, f"--- stdout ---\n{done.stdout}\n--- stderr ---\n{done.stderr}"


@dataclass
class Build:
    directory: Path
    failure: str  # empty when configure and build succeeded


@pytest.fixture(scope="module")
def core_tests_build(tmp_path_factory):
    cmake = find_tool("cmake", "CMAKE_BIN_DIR", "cmake")
    if cmake is None:
        pytest.skip('cmake is not installed; `pip install ".[test]"` provides it')
    ninja = find_tool("ninja", "BIN_DIR", "ninja")
    build_dir = tmp_path_factory.mktemp("cpp-core-build")
    configure = [
        cmake,
        "-S",
        str(REPO_ROOT),
        "-B",
        str(build_dir),
        "-DFASTGD_BUILD_TESTS=ON",
        "-DFASTGD_BUILD_PYTHON=OFF",
        # The interpreter running pytest is the one whose cmeel-eigen CMake should find.
        f"-DPython_EXECUTABLE={sys.executable}",
    ]
    if ninja is not None:
        configure += ["-G", "Ninja", f"-DCMAKE_MAKE_PROGRAM={ninja}"]
    code, output = run(configure, CONFIGURE_TIMEOUT)
    if code != 0:
        return Build(build_dir, f"CMake configure failed ({code}):\n{output}")
    code, output = run([cmake, "--build", str(build_dir), "--parallel"], BUILD_TIMEOUT)
    if code != 0:
        return Build(build_dir, f"CMake build failed ({code}):\n{output}")
    return Build(build_dir, "")


def test_cmake_builds_core_tests(core_tests_build):
    assert not core_tests_build.failure, core_tests_build.failure
    for program in PROGRAMS.keys() - OPTIONAL_PROGRAMS:
        assert (core_tests_build.directory / program).is_file(), program


@pytest.mark.parametrize("program", PROGRAMS)
def test_core_tests_pass(core_tests_build, program):
    if core_tests_build.failure:
        pytest.fail("the C++ tests were not built; see test_cmake_builds_core_tests")
    path = core_tests_build.directory / program
    if program in OPTIONAL_PROGRAMS and not path.is_file():
        pytest.skip(f"{program} is not built on this platform")
    code, output = run([str(path)], RUN_TIMEOUT, cwd=REPO_ROOT)
    if program in OPTIONAL_PROGRAMS and code == SKIP_EXIT_CODE:
        pytest.skip(f"{program}: {output.strip()}")
    assert code == 0, f"{program} exited with {code}:\n{output}"
    summaries = SUMMARY_LINE.findall(output)
    assert summaries, f"no 'N passed, M failed' line in the output:\n{output}"
    passed, failed = (int(count) for count in summaries[-1])
    assert failed == 0, output
    assert passed >= PROGRAMS[program], f"only {passed} C++ tests ran:\n{output}"
