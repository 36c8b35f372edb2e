"""Packaging: metadata in pyproject.toml only, TensorFlow chosen by an extra, the pinned
development environment inside the declared ranges, a clear error without TensorFlow, and (slow)
the sdist and the wheel built offline, installed into fresh virtual environments and run."""

import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import numpy as np
import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PROJECT = PYPROJECT["project"]
TF_DISTS = {"tensorflow", "tensorflow-cpu"}

# (sys_platform, platform_machine) -> the TensorFlow each extra must install there.
PLATFORMS = {
    ("linux", "x86_64"): {"cpu": "tensorflow-cpu", "gpu": "tensorflow[and-cuda]"},
    ("win32", "AMD64"): {"cpu": "tensorflow-cpu", "gpu": "tensorflow"},
    ("darwin", "arm64"): {"cpu": "tensorflow", "gpu": "tensorflow"},
    ("linux", "aarch64"): {"cpu": "tensorflow", "gpu": "tensorflow"},
}


def _name(req: Requirement) -> str:
    return req.name.lower().replace("_", "-")


def _selected(extra: str, platform: tuple[str, str]) -> list[Requirement]:
    env = default_environment()
    env.update(sys_platform=platform[0], platform_machine=platform[1], extra=extra)
    reqs = [Requirement(r) for r in PROJECT["optional-dependencies"][extra]]
    return [r for r in reqs if r.marker is None or r.marker.evaluate(env)]


def _pins(*files: str) -> dict[str, str]:
    pins = {}
    for f in files:
        for line in (ROOT / f).read_text().splitlines():
            line = line.split("#")[0].strip()
            if line:
                name, _, version = line.partition("==")
                pins[name.lower().replace("_", "-")] = version
    return pins


def test_metadata_is_static_in_pyproject():
    assert not (ROOT / "setup.py").exists()
    assert PROJECT["name"] == "mrcnn" and PROJECT["requires-python"] == ">=3.11"
    assert PROJECT["dynamic"] == ["version"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "mrcnn.__version__"}
    assert PROJECT["scripts"] == {"mrcnn": "mrcnn.tools.cli:main"}  # no mrcnn-weights
    assert {"cpu", "gpu", "augment", "imgaug"} <= set(PROJECT["optional-dependencies"])


def test_base_install_has_no_tensorflow_and_no_gui_opencv():
    names = {_name(Requirement(r)) for r in PROJECT["dependencies"]}
    assert not names & (TF_DISTS | {"keras", "imgaug", "opencv-python"})
    assert {"numpy", "h5py", "scikit-image", "pycocotools", "opencv-python-headless"} <= names
    for extra, reqs in PROJECT["optional-dependencies"].items():
        assert not any(_name(Requirement(r)) in {"imgaug", "opencv-python"} for r in reqs), extra


@pytest.mark.parametrize("platform", sorted(PLATFORMS))
def test_each_extra_installs_exactly_one_tensorflow(platform):
    for extra, expected in PLATFORMS[platform].items():
        tf = [r for r in _selected(extra, platform) if _name(r) in TF_DISTS]
        assert len(tf) == 1, (extra, platform, tf)
        got = tf[0].name + (f"[{','.join(sorted(tf[0].extras))}]" if tf[0].extras else "")
        assert got == expected, (extra, platform)
        assert tf[0].specifier.contains("2.21.0") and not tf[0].specifier.contains("2.22.0")
        names = {_name(r) for r in _selected(extra, platform)}
        assert {"keras", "tensorboard"} <= names, (extra, names)
    for extra in ("augment", "imgaug"):
        assert not any(_name(r) in TF_DISTS for r in _selected(extra, platform))


def test_pinned_dev_environment_is_inside_the_declared_ranges():
    pins = _pins("requirements.txt", "requirements-dev.txt", "requirements-nodeps.txt")
    declared = [Requirement(r) for r in PROJECT["dependencies"]]
    linux = ("linux", "x86_64")
    declared += _selected("cpu", linux) + _selected("augment", linux) + _selected("imgaug", linux)
    for req in declared:
        assert _name(req) in pins, f"{req} has no exact pin in requirements*.txt"
        assert req.specifier.contains(pins[_name(req)]), (str(req), pins[_name(req)])
    build_req = Requirement(PYPROJECT["build-system"]["requires"][0])
    assert build_req.specifier.contains(pins["setuptools"])
    assert pins["imgaug"] == "0.4.0"


def test_missing_tensorflow_names_the_extras(tmp_path):
    """An interpreter that sees only numpy and mrcnn: the numpy side imports, the networks
    fail with ModuleNotFoundError naming `mrcnn[cpu]` / `mrcnn[gpu]`."""
    numpy_dir = Path(np.__file__).parent
    for entry in (numpy_dir, numpy_dir.with_name("numpy.libs")):
        if entry.exists():
            (tmp_path / entry.name).symlink_to(entry)
    code = ("import sys\n"
            "import mrcnn, mrcnn.config\n"
            "assert 'tensorflow' not in sys.modules\n"
            "for name in ('mrcnn.model', 'tensorflow', 'keras'):\n"
            "    try:\n"
            "        __import__(name)\n"
            "    except ModuleNotFoundError as err:\n"
            "        print(err.name, '|', err)\n")
    env = dict(os.environ, PYTHONPATH=f"{tmp_path}{os.pathsep}{ROOT}")
    out = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True,
                         env=env, cwd=tmp_path, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    names = [line.split(" |")[0] for line in lines]
    assert len(names) == 3 and names[0] in {"keras", "tensorflow"}, lines  # mrcnn.model's first
    assert names[1:] == ["tensorflow", "keras"]
    for line in lines:
        assert 'pip install "mrcnn[cpu]"' in line and 'pip install "mrcnn[gpu]"' in line


def test_installed_tensorflow_adds_no_finder():
    code = ("import sys, mrcnn\n"
            "print(sum(type(f).__name__ == '_MissingTensorFlowFinder' for f in sys.meta_path))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "0"


# --- Built distributions (slow): build offline, install each into a fresh venv, run. ---

SOURCES = ["pyproject.toml", "README.md", "MANIFEST.in", "Makefile", "requirements.txt",
           "requirements-dev.txt", "requirements-nodeps.txt", "mrcnn", "tests", "samples"]


def _run(cmd, cwd, timeout=300):
    out = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, cwd=cwd,
                         timeout=timeout, env=dict(os.environ, PYTHONNOUSERSITE="1"))
    assert out.returncode == 0, f"{cmd} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out.stdout


@pytest.fixture(scope="module")
def dists(tmp_path_factory):
    """sdist and wheel built by `python -m build --no-isolation` (the wheel from the sdist) out
    of a copy of the sources, so the build reads no file it was not given."""
    pytest.importorskip("build", reason="requirements-dev.txt installs `build`")
    src = tmp_path_factory.mktemp("src")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=ignore)
        else:
            shutil.copy2(ROOT / name, src / name)
    out = tmp_path_factory.mktemp("dist")
    _run([sys.executable, "-m", "build", "--no-isolation", "--outdir", out, src], cwd=src)
    (sdist,), (wheel,) = out.glob("*.tar.gz"), out.glob("*.whl")
    return sdist, wheel


def _fresh_venv(path: Path) -> Path:
    """A venv without pip that sees this environment's packages after its own (a .pth line),
    so that installing mrcnn with --no-deps --no-index downloads nothing."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True,
                   timeout=120)
    python = path / "bin" / "python"
    site = _run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                cwd=path).strip()
    (Path(site) / "_dev_site.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python


def _check_installed(python: Path, cwd: Path) -> None:
    venv = python.parent.parent
    assert (venv / "bin" / "mrcnn").exists() and not (venv / "bin" / "mrcnn-weights").exists()
    usage = _run([venv / "bin" / "mrcnn", "--help"], cwd=cwd)
    assert "usage: mrcnn" in usage and "inspect-weights" in usage
    code = ("import importlib.metadata as md, mrcnn, mrcnn.model\n"
            "print(mrcnn.__file__)\n"
            "print(mrcnn.__version__, md.version('mrcnn'))\n"
            "print(sorted(md.metadata('mrcnn').get_all('Provides-Extra')))\n"
            "print(hasattr(mrcnn.model, 'MaskRCNN'))\n")
    file, versions, extras, has_model = _run([python, "-c", code], cwd=cwd).splitlines()
    assert Path(file).resolve().is_relative_to(venv.resolve()), file
    assert versions == "0.1.0 0.1.0"
    assert extras == "['augment', 'cpu', 'gpu', 'imgaug']"
    assert has_model == "True"


@pytest.mark.slow
def test_sdist_contents(dists):
    import tarfile

    sdist, _ = dists
    with tarfile.open(sdist) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    assert {"pyproject.toml", "README.md", "mrcnn/__init__.py", "mrcnn/model.py",
            "tests/conftest.py", "tests/data/refactor_golden.npz", "samples/shapes/shapes.py",
            "requirements.txt"} <= names
    assert not any(n.startswith(("logs/", "bench/")) or "__pycache__" in n for n in names)


@pytest.mark.slow
def test_wheel_installs_and_runs(dists, tmp_path):
    _, wheel = dists
    python = _fresh_venv(tmp_path / "venv")
    _run([python, "-m", "pip", "install", "-q", "--no-deps", "--no-index", wheel], cwd=tmp_path)
    _check_installed(python, tmp_path)


@pytest.mark.slow
def test_sdist_installs_and_runs(dists, tmp_path):
    sdist, _ = dists
    python = _fresh_venv(tmp_path / "venv")
    _run([python, "-m", "pip", "install", "-q", "--no-deps", "--no-index",
          "--no-build-isolation", sdist], cwd=tmp_path)
    _check_installed(python, tmp_path)


@pytest.mark.slow
def test_pip_check_reports_only_the_documented_no_deps_conflicts():
    """requirements-nodeps.txt explains both: imgaug's GUI opencv-python and tf-keras'
    full tensorflow are left out on purpose."""
    out = subprocess.run([sys.executable, "-m", "pip", "check"], capture_output=True,
                         text=True, timeout=120)
    problems = {line for line in out.stdout.splitlines() if line.strip()}
    allowed = {"imgaug 0.4.0 requires opencv-python, which is not installed.",
               "tf-keras 2.21.0 requires tensorflow, which is not installed."}
    assert problems <= allowed, problems - allowed
