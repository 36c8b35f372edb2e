"""mrcnn.engine.host_allocator: glibc malloc settings that stop a step's freed tensors from
going back to the OS (and faulting in again) on every step."""

import mmap
import os
import subprocess
import sys

import pytest

from mrcnn.engine import host_allocator

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GLIBC = host_allocator._glibc() is not None

# Blocks of 4 MiB from malloc, every page written. (bytearray, not numpy: numpy asks for
# transparent huge pages on arrays >= 4 MiB, which fault 2 MiB at a time, unpredictably.)
BLOCK = 4 << 20


def touched_blocks(count: int) -> list:
    return [bytearray(b"\x01") * BLOCK for _ in range(count)]


# Allocate and free ten blocks 30 times (the pattern of a step's activations) and print the
# minor page faults that cost; tune first when asked.
CHILD = """
import sys
sys.path[:0] = [{repo!r}, {tests!r}]
from mrcnn.engine import host_allocator
from test_host_allocator import touched_blocks
if {tune}:
    assert host_allocator.tune_host_allocator()
start = host_allocator.minor_page_faults()
for _ in range(30):
    blocks = touched_blocks(10)
    del blocks
print(host_allocator.minor_page_faults() - start)
"""


def _faults(tune: bool) -> int:
    env = {k: v for k, v in os.environ.items() if k not in host_allocator.USER_VARIABLES}
    code = CHILD.format(repo=REPO, tests=os.path.join(REPO, "tests"), tune=tune)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         timeout=120, check=True)
    return int(out.stdout.split()[-1])


@pytest.mark.skipif(not GLIBC, reason="glibc's mallopt only")
def test_tuned_malloc_keeps_freed_blocks_instead_of_faulting_them_in_again():
    default, tuned = _faults(False), _faults(True)
    # 30 x 40 MiB touched = 307,200 pages. glibc's defaults return the freed blocks to the
    # OS and fault them in again (measured 306,303); tuned, the first round's blocks are
    # reused (measured 10,229).
    assert default > 50_000, default
    assert tuned < default / 5, (tuned, default)


@pytest.mark.skipif(not GLIBC, reason="glibc's mallopt only")
def test_tuning_is_applied_once_and_yields_to_the_users_variables(monkeypatch, caplog):
    monkeypatch.setattr(host_allocator, "_applied", None)
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "1000000")
    with caplog.at_level("INFO", logger="mrcnn.engine.host_allocator"):
        assert host_allocator.tune_host_allocator() is False
    assert "MALLOC_TRIM_THRESHOLD_" in caplog.text
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_")
    assert host_allocator.tune_host_allocator() is False  # decided once per process
    monkeypatch.setattr(host_allocator, "_applied", None)
    assert host_allocator.tune_host_allocator() is True
    assert host_allocator.tune_host_allocator() is True


def test_minor_page_faults_counts_up():
    before = host_allocator.minor_page_faults()
    if before < 0:
        pytest.skip("no /proc/self/stat")
    # A fresh anonymous mapping (no huge-page advice): 64 MiB = 16,384 pages, each written.
    block = mmap.mmap(-1, 64 << 20)
    for offset in range(0, 64 << 20, 4096):
        block[offset] = 1
    assert host_allocator.minor_page_faults() - before >= 8000
    block.close()


def test_rss_and_its_peak_follow_written_memory():
    if host_allocator.rss_mib() < 0:
        pytest.skip("no /proc/self/status")
    before = host_allocator.rss_mib()
    # Write enough to lift the RSS 128 MiB above this process' earlier peak.
    peak_before = host_allocator.peak_rss_mib()
    block = mmap.mmap(-1, (int(peak_before - before) + 128) << 20)
    for offset in range(0, len(block), 4096):
        block[offset] = 1
    during = host_allocator.rss_mib()
    assert during - before > 0.75 * len(block) / 2**20 - 1, (before, during)
    block.close()  # the kernel updates the high-water mark lazily, at the latest on unmap
    assert host_allocator.peak_rss_mib() - peak_before > 96, (peak_before, during)


# Tune, free 80 MiB of written blocks (kept by the tuned malloc), then print the RSS before
# and after release_free_memory(), in MiB. A fresh process: in a long one, earlier numpy
# arrays leave parts of the heap advised for huge pages and the heap's state is unknown.
RELEASE_CHILD = """
import sys
sys.path[:0] = [{repo!r}, {tests!r}]
from mrcnn.engine import host_allocator
from test_host_allocator import touched_blocks
assert host_allocator.tune_host_allocator()
blocks = touched_blocks(20)
del blocks
before = host_allocator.rss_mib()
released = host_allocator.release_free_memory()
print(released, before, host_allocator.rss_mib())
"""


@pytest.mark.skipif(not GLIBC, reason="glibc's malloc_trim only")
def test_release_free_memory_returns_the_free_heap():
    env = {k: v for k, v in os.environ.items() if k not in host_allocator.USER_VARIABLES}
    code = RELEASE_CHILD.format(repo=REPO, tests=os.path.join(REPO, "tests"))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         timeout=120, check=True)
    released, before, after = out.stdout.split()[-3:]
    assert released == "True"
    # The 80 MiB the tuned malloc kept went back to the OS.
    assert float(before) - float(after) > 60, (before, after)
