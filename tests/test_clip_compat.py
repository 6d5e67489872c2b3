"""OpenAI's CLIP package imports through ``promptlearn.modeling.clip_compat`` in clean interpreters:
without ``pkg_resources`` (current setuptools) a stand-in exposing the real ``packaging`` is registered;
an installed ``pkg_resources`` that provides ``packaging`` is left untouched; and the same holds in a
fresh virtual environment with the project installed.

Each case runs in its own interpreter (several seconds of torch imports), so all of them are started
together when the module begins and each test waits for its own."""
import glob
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile

import pytest
from conftest import REPO_ROOT

SITE_PACKAGES = sorted({sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]})
EXPECTED_IDS = [49406, 320, 1125, 539, 320, 2368, 269, 49407]  # "a photo of a cat." (REFERENCE §5.2)

# Runs in the child interpreter. argv: JSON list of paths to put on sys.path first (may be empty), then
# "preimport" to import pkg_resources before the compatibility module.
PROBE = r"""
import importlib.util, json, sys
front = json.loads(sys.argv[1])
sys.path[:0] = front
report = {"sys_flags": [sys.flags.isolated, sys.flags.no_site]}
spec = importlib.util.find_spec("pkg_resources")
report["pkg_resources_origin_before"] = spec.origin if spec else None
if len(sys.argv) > 2 and sys.argv[2] == "preimport":
    import pkg_resources
    before = pkg_resources.packaging
    report["packaging_before"] = before.__name__
import packaging
import promptlearn.modeling.clip_compat as compat
import clip
import pkg_resources
report["compat_file"] = compat.__file__
report["clip_file"] = clip.__file__
report["pkg_resources_file_after"] = getattr(pkg_resources, "__file__", None)
report["packaging_after"] = pkg_resources.packaging.__name__
report["packaging_is_top_level"] = pkg_resources.packaging is packaging
if len(sys.argv) > 2 and sys.argv[2] == "preimport":
    report["packaging_untouched"] = pkg_resources.packaging is before
report["clip_is_compat_clip"] = compat.clip is clip
report["tokens"] = clip.tokenize(["a photo of a cat."])[0, :8].tolist()
print("REPORT " + json.dumps(report))
"""


def clean_env():
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTHON")}
    env["PYTHONNOUSERSITE"] = "1"
    return env


def start(python, args, cwd):
    return subprocess.Popen([python, *args], cwd=cwd, env=clean_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def report_of(proc, timeout=300):
    stdout, stderr = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, f"probe failed:\n{stdout}\n{stderr}"
    lines = [line for line in stdout.splitlines() if line.startswith("REPORT ")]
    assert lines, stdout + stderr
    return json.loads(lines[-1][len("REPORT "):])


def installed_pkg_resources(target_dir):
    """A real ``pkg_resources`` (setuptools < 70, with its vendored ``packaging``) copied out of the wheel
    that ships with CPython's ensurepip; else a hand-written one that provides its own ``packaging``."""
    import ensurepip

    wheels = sorted(glob.glob(os.path.join(os.path.dirname(ensurepip.__file__), "_bundled", "setuptools-*.whl")))
    if wheels:
        with zipfile.ZipFile(wheels[-1]) as wheel:
            members = [name for name in wheel.namelist() if name.startswith("pkg_resources/")]
            wheel.extractall(target_dir, members)
        return "real"
    package = os.path.join(target_dir, "pkg_resources")
    os.makedirs(package)
    with open(os.path.join(package, "__init__.py"), "w") as f:
        f.write('"""An installed pkg_resources with its own packaging namespace."""\n'
                "import types\n"
                "from packaging import version\n"
                'packaging = types.ModuleType("pkg_resources.extern.packaging")\n'
                "packaging.version = version\n")
    return "hand-written"


@pytest.fixture(scope="module")
def probes(tmp_path_factory):
    """Start every interpreter at once: isolated without pkg_resources, isolated with one, fresh venv."""
    base = tmp_path_factory.mktemp("clip_compat")
    procs = {}
    # 1. `python -I -S`: no user site, no .pth processing; only the repository and the venv's site-packages
    #    on the path (the venv's own setuptools has no pkg_resources).
    front = json.dumps([REPO_ROOT, *SITE_PACKAGES])
    procs["isolated"] = start(sys.executable, ["-I", "-S", "-c", PROBE, front], cwd=str(base))

    # 2. The same, with an installed pkg_resources that provides packaging, imported first.
    extra = base / "with_pkg_resources"
    extra.mkdir()
    kind = installed_pkg_resources(str(extra))
    front = json.dumps([REPO_ROOT, str(extra), *SITE_PACKAGES])
    procs["installed"] = start(sys.executable, ["-I", "-S", "-c", PROBE, front, "preimport"], cwd=str(base))

    # 3. A fresh virtual environment with the project installed from a copy of its sources. Installing torch
    #    and the other dependencies offline is not possible (and takes minutes), so the new venv reaches
    #    them through a .pth line naming this venv's site-packages: a plain path line adds the folder
    #    without running its .pth files, so no editable-install hook or setuptools shim comes along, and
    #    the venv is created without --system-site-packages because the base interpreter's site-packages
    #    may hold an old setuptools with pkg_resources. promptlearn itself is really installed, by pip,
    #    from setup.py, so the installed package (not the source tree) is what gets imported.
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, env=clean_env())
    venv_python = str(venv / "bin" / "python")
    venv_site = subprocess.run([venv_python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True, env=clean_env()).stdout.strip()
    with open(os.path.join(venv_site, "project-dependencies.pth"), "w") as f:
        f.write("\n".join(SITE_PACKAGES) + "\n")
    source = base / "source"
    source.mkdir()
    for name in ("setup.py", "requirements.txt", "pyproject.toml"):
        shutil.copy(os.path.join(REPO_ROOT, name), source / name)
    shutil.copytree(os.path.join(REPO_ROOT, "promptlearn"), source / "promptlearn",
                    ignore=shutil.ignore_patterns("__pycache__"))
    install = subprocess.run([sys.executable, "-m", "pip", "--python", venv_python, "install", "--quiet", "--no-deps",
                              "--no-build-isolation", "--no-index", str(source)],
                             capture_output=True, text=True, env=clean_env())
    assert install.returncode == 0, install.stdout + install.stderr
    procs["venv"] = start(venv_python, ["-c", PROBE, "[]"], cwd=str(base))
    yield {"procs": procs, "kind": kind, "extra": str(extra), "venv_site": venv_site}
    for proc in procs.values():
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_isolated_interpreter_without_pkg_resources(probes):
    report = report_of(probes["procs"]["isolated"])
    assert report["sys_flags"] == [1, 1]
    assert report["pkg_resources_origin_before"] is None  # the situation the module exists for
    assert report["compat_file"] == os.path.join(REPO_ROOT, "promptlearn", "modeling", "clip_compat.py")
    assert report["clip_file"].startswith(tuple(SITE_PACKAGES))  # OpenAI's package, unmodified
    assert report["pkg_resources_file_after"] is None  # the in-memory stand-in
    assert report["packaging_is_top_level"] is True
    assert report["clip_is_compat_clip"] is True
    assert report["tokens"] == EXPECTED_IDS


def test_installed_pkg_resources_is_left_untouched(probes):
    report = report_of(probes["procs"]["installed"])
    assert report["pkg_resources_origin_before"].startswith(probes["extra"])
    assert report["pkg_resources_file_after"].startswith(probes["extra"])
    assert report["packaging_untouched"] is True
    assert report["packaging_is_top_level"] is False  # its own (vendored) packaging stays in place
    assert report["packaging_after"] == report["packaging_before"]
    assert report["tokens"] == EXPECTED_IDS


def test_fresh_virtual_environment(probes):
    report = report_of(probes["procs"]["venv"])
    assert report["compat_file"].startswith(probes["venv_site"])  # the installed copy
    assert report["tokens"] == EXPECTED_IDS
    if report["pkg_resources_origin_before"] is None:
        assert report["pkg_resources_file_after"] is None and report["packaging_is_top_level"] is True
    else:  # a dependency venv with an old setuptools: its pkg_resources must be the one in use
        assert report["pkg_resources_file_after"] == report["pkg_resources_origin_before"]
