"""The data tools, run as users run them (``python -m datasets check|download``, the application's entry point):
check on complete and damaged miniature trees, and download with the network replaced by fakes (no test opens a
connection). The library itself never imports the application: no module of ``promptlearn`` imports the
``datasets`` or ``trainers`` packages or edits ``sys.path``."""
import io
import os
import shutil
import socket
import tarfile
from urllib.error import URLError

import gdown
import pytest
import requests
from conftest import REPO_ROOT
from miniature_datasets import write_all, write_miniature

from datasets.__main__ import main as data_tools
from promptlearn.data.datasets.layout import SPLIT
from promptlearn.tools import download_data
from promptlearn.tools.dataset_catalog import DATASET_NAMES, reader_class
from promptlearn.tools.download_data import SOURCES


def check(argv):
    return data_tools(["check", *argv])


def download(argv):
    return data_tools(["download", *argv])


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a test tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def snapshot(root):
    return sorted(os.path.join(folder, name) for folder, _, names in os.walk(root) for name in names)


# ------------------------------------------------------------------------------------------- check_data

@pytest.fixture(scope="module")
def full_root(tmp_path_factory):
    return write_all(tmp_path_factory.mktemp("complete"))


def test_check_reports_a_complete_tree_and_writes_nothing(full_root, capsys):
    before = snapshot(full_root)
    assert check(["--root", full_root]) == 0
    out = capsys.readouterr().out
    assert "15 of 15 datasets complete" in out
    assert "INCOMPLETE" not in out and "MISSING" not in out
    assert "Caltech101: complete" in out and "ImageNetA: complete" in out
    assert "200 classes; images: test 300" in out
    assert "6 classes; images: train 40, val 14, test 12" in out
    assert snapshot(full_root) == before


@pytest.mark.parametrize("name,relpath", [
    ("Caltech101", "caltech-101/101_ObjectCategories/anchor/image_0003.jpg"),
    ("StanfordCars", "stanford_cars/cars_test/00002.jpg"),
    ("Food101", "food-101/split_zhou_Food101.json"),
    ("FGVCAircraft", "fgvc_aircraft/variants.txt"),
    ("ImageNet", "imagenet/classnames.txt"),
    ("OxfordFlowers", "oxford_flowers/jpg"),
])
def test_check_names_the_missing_file(tmp_path, capsys, name, relpath):
    write_miniature(tmp_path, name)
    path = os.path.join(str(tmp_path), relpath)
    shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)
    assert check(["--root", str(tmp_path), "--dataset", name]) == 1
    out = capsys.readouterr().out
    assert f"{name}: INCOMPLETE" in out and f"DATASETS.md#{name.lower()}" in out
    assert path in out


def test_check_reports_a_missing_dataset_folder(tmp_path, capsys):
    assert check(["--root", str(tmp_path), "--dataset", "dtd"]) == 1
    assert f"MISSING  {os.path.join(str(tmp_path), 'dtd')}" in capsys.readouterr().out


def test_check_rejects_an_unknown_dataset(tmp_path, capsys):
    assert check(["--root", str(tmp_path), "--dataset", "cifar10"]) == 1
    assert 'unknown dataset "cifar10"' in capsys.readouterr().err


# ---------------------------------------------------------------------------------------- download_data

class FakeResponse(io.BytesIO):
    def __init__(self, body: bytes, status: int):
        super().__init__(body)
        self.status = status
        self.headers = {"Content-Length": str(len(body))}


class FakeServer:
    """Serves ``files`` (url -> bytes) to download_data.urlopen, honouring Range unless told not to."""

    def __init__(self, files, honour_range=True):
        self.files = files
        self.honour_range = honour_range
        self.requests = []

    def __call__(self, request, timeout=None):
        url, byte_range = request.full_url, request.get_header("Range")
        self.requests.append((url, byte_range))
        body = self.files[url]
        if byte_range and self.honour_range:
            return FakeResponse(body[int(byte_range[len("bytes="):-1]):], 206)
        return FakeResponse(body, 200)


class FakeDrive:
    """Stands in for gdown.download: writes ``files[id]`` to the output path."""

    def __init__(self, files):
        self.files = files
        self.calls = []

    def __call__(self, id=None, output=None, quiet=False, resume=False, **kwargs):
        self.calls.append({"id": id, "output": output, "resume": resume})
        with open(output, "wb") as f:
            f.write(self.files[id])
        return output


def source_item(name, filename):
    return next(item for item in SOURCES[name].items if item.filename == filename)


def tar_gz(folder, arcname_of):
    """A .tar.gz of every file under ``folder``, each stored as ``arcname_of(relative path)``."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for path in snapshot(folder):
            archive.add(path, arcname=arcname_of(os.path.relpath(path, folder)))
    return buffer.getvalue()


@pytest.fixture
def caltech_sources(tmp_path):
    """The published Caltech101 files, made from a miniature: the image archive and the split file."""
    dataset_dir = write_miniature(tmp_path / "published", "Caltech101")
    archive = tar_gz(os.path.join(dataset_dir, "101_ObjectCategories"), lambda rel: f"101_ObjectCategories/{rel}")
    with open(os.path.join(dataset_dir, "split_zhou_Caltech101.json"), "rb") as f:
        split = f.read()
    return archive, split


def install(monkeypatch, server=None, drive=None):
    if server is not None:
        monkeypatch.setattr(download_data, "urlopen", server)
    if drive is not None:
        monkeypatch.setattr(gdown, "download", drive)


def test_splits_only_fetches_the_split_file_with_gdown_resume(tmp_path, monkeypatch, caltech_sources):
    _, split = caltech_sources
    server = FakeServer({})
    drive = FakeDrive({source_item("Caltech101", "split_zhou_Caltech101.json").gdrive_id: split})
    install(monkeypatch, server, drive)
    root = tmp_path / "data"
    assert download(["--root", str(root), "--dataset", "caltech101", "--splits-only"]) == 0
    assert (root / "caltech-101" / "split_zhou_Caltech101.json").read_bytes() == split
    assert [call["resume"] for call in drive.calls] == [True]
    assert server.requests == []


def test_full_download_extracts_into_the_layout_the_reader_checks(tmp_path, monkeypatch, capsys, caltech_sources):
    archive, split = caltech_sources
    server = FakeServer({source_item("Caltech101", "101_ObjectCategories.tar.gz").url: archive})
    drive = FakeDrive({source_item("Caltech101", "split_zhou_Caltech101.json").gdrive_id: split})
    install(monkeypatch, server, drive)
    root = tmp_path / "data"
    assert download(["--root", str(root), "--dataset", "Caltech101"]) == 0
    dataset_dir = root / "caltech-101"
    assert sorted(os.listdir(dataset_dir)) == ["101_ObjectCategories", "split_zhou_Caltech101.json"]
    capsys.readouterr()
    assert check(["--root", str(root), "--dataset", "Caltech101"]) == 0
    assert "Caltech101: complete" in capsys.readouterr().out
    # a second run finds everything in place and fetches nothing
    server.requests.clear()
    drive.calls.clear()
    assert download(["--root", str(root), "--dataset", "Caltech101"]) == 0
    assert server.requests == [] and drive.calls == []


@pytest.mark.parametrize("honour_range", [True, False])
def test_a_partial_download_resumes(tmp_path, monkeypatch, caltech_sources, honour_range):
    archive, split = caltech_sources
    item = source_item("Caltech101", "101_ObjectCategories.tar.gz")
    server = FakeServer({item.url: archive}, honour_range=honour_range)
    install(monkeypatch, server, FakeDrive({source_item("Caltech101", "split_zhou_Caltech101.json").gdrive_id: split}))
    dataset_dir = tmp_path / "data" / "caltech-101"
    dataset_dir.mkdir(parents=True)
    half = len(archive) // 2
    (dataset_dir / (item.filename + ".part")).write_bytes(archive[:half])
    assert download(["--root", str(tmp_path / "data"), "--dataset", "Caltech101"]) == 0
    assert server.requests == [(item.url, f"bytes={half}-")]
    assert (dataset_dir / "101_ObjectCategories" / "accordion" / "image_0001.jpg").is_file()
    assert not (dataset_dir / (item.filename + ".part")).exists() and not (dataset_dir / item.filename).exists()


def test_nested_archive_members_are_moved_into_place(tmp_path, monkeypatch, capsys):
    """FGVC-Aircraft's archive holds fgvc-aircraft-2013b/data/...; the reader wants fgvc_aircraft/..."""
    dataset_dir = write_miniature(tmp_path / "published", "FGVCAircraft")
    archive = tar_gz(dataset_dir, lambda rel: f"fgvc-aircraft-2013b/data/{rel}")
    install(monkeypatch, FakeServer({SOURCES["FGVCAircraft"].items[0].url: archive}), FakeDrive({}))
    root = tmp_path / "data"
    assert download(["--root", str(root), "--dataset", "fgvc_aircraft"]) == 0
    capsys.readouterr()
    assert check(["--root", str(root), "--dataset", "FGVCAircraft"]) == 0
    assert not any(name.startswith(".extract") for name in os.listdir(root / "fgvc_aircraft"))


def test_an_error_page_instead_of_json_is_rejected_and_removed(tmp_path, monkeypatch, capsys):
    item = source_item("EuroSAT", "split_zhou_EuroSAT.json")
    install(monkeypatch, FakeServer({}), FakeDrive({item.gdrive_id: b"<html>Quota exceeded</html>"}))
    root = tmp_path / "data"
    assert download(["--root", str(root), "--dataset", "EuroSAT", "--splits-only"]) == 1
    err = capsys.readouterr().err
    assert "is not a valid .json file" in err
    assert not (root / "eurosat" / item.filename).exists()


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in err
    return lines[0]


def test_offline_direct_download_gives_one_line(tmp_path, monkeypatch, capsys):
    def offline(request, timeout=None):
        raise URLError(socket.gaierror(-3, "Temporary failure in name resolution"))

    install(monkeypatch, offline, FakeDrive({}))
    assert download(["--root", str(tmp_path), "--dataset", "ImageNetV2"]) == 1
    line = one_error_line(capsys.readouterr().err)
    assert "unreachable" in line and "imagenetv2-matched-frequency.tar.gz" in line


def test_offline_google_drive_gives_one_line(tmp_path, monkeypatch, capsys):
    def offline(**kwargs):
        raise requests.exceptions.ConnectionError("Failed to resolve 'drive.google.com'")

    install(monkeypatch, FakeServer({}), offline)
    assert download(["--root", str(tmp_path), "--dataset", "dtd", "--splits-only"]) == 1
    line = one_error_line(capsys.readouterr().err)
    assert "unreachable" in line and "split_zhou_DescribableTextures.json" in line


def test_test_sets_reuse_imagenets_class_list(tmp_path, monkeypatch, capsys):
    dataset_dir = write_miniature(tmp_path, "ImageNet")
    drive = FakeDrive({})
    install(monkeypatch, FakeServer({}), drive)
    assert download(["--root", str(tmp_path), "--dataset", "ImageNetSketch", "--splits-only"]) == 0
    copied = tmp_path / "imagenet-sketch" / "classnames.txt"
    with open(os.path.join(dataset_dir, "classnames.txt")) as original:
        assert copied.read_text() == original.read()
    assert drive.calls == []


def test_manual_steps_are_printed(tmp_path, monkeypatch, capsys):
    drive = FakeDrive({source_item("ImageNet", "classnames.txt").gdrive_id: b"n01440764 tench\n"})
    install(monkeypatch, FakeServer({}), drive)
    assert download(["--root", str(tmp_path), "--dataset", "imagenet"]) == 0
    out = capsys.readouterr().out
    assert "to fetch by hand" in out and "image-net.org" in out and "DATASETS.md#imagenet" in out


def test_every_dataset_has_a_docs_section_and_its_split_file_is_downloadable():
    with open(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "DATASETS.md")) as f:
        headings = {line[3:].strip() for line in f if line.startswith("## ")}
    assert set(SOURCES) == set(DATASET_NAMES)
    for name in DATASET_NAMES:
        assert name in headings  # the anchor DATASETS.md#<name lower-cased> that errors point to
        downloadable = {item.filename for item in SOURCES[name].items if item.split}
        for piece in reader_class(name).pieces:
            if piece.role == SPLIT or piece.relpath == "classnames.txt":
                assert piece.relpath in downloadable, (name, piece.relpath)
        for item in SOURCES[name].items:
            assert bool(item.url) != bool(item.gdrive_id), (name, item.filename)


# ------------------------------------------------------------------------------------------- one-way imports

def _imports_of(path):
    import ast

    with open(path) as f:
        tree = ast.parse(f.read(), path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module


def test_the_library_never_imports_the_application():
    offenders = []
    for folder, _, names in os.walk(os.path.join(REPO_ROOT, "promptlearn")):
        for name in names:
            if not name.endswith(".py"):
                continue
            path = os.path.join(folder, name)
            with open(path) as f:
                if "sys.path" in f.read():
                    offenders.append(f"{path}: edits sys.path")
            offenders += [f"{path}: imports {module}" for module in _imports_of(path)
                          if module.split(".")[0] in ("datasets", "trainers")]
    assert offenders == []


def test_the_command_users_run(tmp_path):
    """``python -m datasets check`` from the repository root, in a fresh interpreter."""
    import subprocess
    import sys

    write_miniature(tmp_path, "DescribableTextures")
    proc = subprocess.run([sys.executable, "-m", "datasets", "check", "--root", str(tmp_path), "--dataset", "dtd"],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "DescribableTextures: complete" in proc.stdout
    proc = subprocess.run([sys.executable, "-m", "datasets"], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 2 and "usage: python -m datasets {check,download}" in proc.stderr
