"""Downloading and extracting VOC archives from a local HTTP server on 127.0.0.1: mirrors,
md5 checks, interrupted and resumed downloads, corrupt archives, hostile tar members."""

import hashlib
import http.server
import io
import tarfile
import threading

import pytest

from conveyor import datasets
from conveyor.datasets import download, make_synthetic_voc
from conveyor.datasets import voc as voc_datasets

ARCHIVE_NAME = "VOCtrainval_11-May-2012.tar"


class Server:
    """Serves in-memory files; can cut a response short and can ignore Range requests."""

    def __init__(self):
        self.files = {}
        self.cut_after = None  # bytes to send before dropping the connection (once)
        self.honour_range = True
        self.requests = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                server.requests.append((self.path, self.headers.get("Range")))
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                start = 0
                range_header = self.headers.get("Range")
                if range_header and server.honour_range:
                    start = int(range_header.split("=")[1].split("-")[0])
                    if start >= len(body):
                        self.send_response(416)
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                payload = body[start:]
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if server.cut_after is not None:
                    payload = payload[: server.cut_after]
                    server.cut_after = None
                    self.wfile.write(payload)
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(payload)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


@pytest.fixture(scope="module")
def voc_tar(tmp_path_factory):
    """A real VOC2012 tar archive (generated tree) and its md5."""
    tree = tmp_path_factory.mktemp("tree")
    make_synthetic_voc(tree, num_images=6, year="2012", image_size=(48, 32))
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        tar.add(tree / "VOCdevkit", arcname="VOCdevkit")
    data = buffer.getvalue()
    return data, hashlib.md5(data).hexdigest()


@pytest.fixture
def voc2012_md5(monkeypatch, voc_tar):
    monkeypatch.setitem(voc_datasets.DATASET_YEAR_DICT["2012"], "md5", voc_tar[1])


def test_download_with_url_argument(server, voc_tar, voc2012_md5, tmp_path):
    server.files["/voc.tar"] = voc_tar[0]
    dataset = datasets.VOCDetection(tmp_path, download=True, url=server.url + "/voc.tar")
    assert len(dataset) > 0 and dataset[0][1]["annotation"]["object"]
    assert (tmp_path / ARCHIVE_NAME).is_file()
    assert not (tmp_path / (ARCHIVE_NAME + ".part")).exists()
    # A second construction finds the verified archive: no new request.
    count = len(server.requests)
    datasets.VOCSegmentation(tmp_path, download=True, url=server.url + "/voc.tar")
    assert len(server.requests) == count


def test_download_from_mirror_environment_variable(
    server, voc_tar, voc2012_md5, tmp_path, monkeypatch
):
    server.files[f"/mirror/{ARCHIVE_NAME}"] = voc_tar[0]
    monkeypatch.setenv("CONVEYOR_VOC_MIRROR", server.url + "/mirror/")
    dataset = datasets.VOCDetection(tmp_path, download=True)
    assert dataset.url == f"{server.url}/mirror/{ARCHIVE_NAME}"
    assert len(dataset) > 0
    # The argument wins over the environment.
    assert (
        datasets.VOCDetection(tmp_path, url="http://elsewhere/x.tar").url
        == "http://elsewhere/x.tar"
    )


def test_wrong_md5_deletes_the_download(server, voc_tar, tmp_path):
    server.files["/voc.tar"] = voc_tar[0]
    with pytest.raises(RuntimeError, match="md5 mismatch .* expected 0{32}"):
        download.download_url(
            server.url + "/voc.tar", tmp_path, "a.tar", md5="0" * 32, progress=False
        )
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(RuntimeError, match="md5 mismatch"):
        datasets.VOCDetection(tmp_path, download=True, url=server.url + "/voc.tar")
    assert not (tmp_path / ARCHIVE_NAME).exists()


def test_corrupt_archive_raises(server, tmp_path):
    corrupt = b"this is not a tar archive" * 1000
    server.files["/bad.tar"] = corrupt
    with pytest.raises(RuntimeError, match="corrupt or truncated archive"):
        download.download_and_extract_archive(
            server.url + "/bad.tar", tmp_path, md5=hashlib.md5(corrupt).hexdigest(), progress=False
        )


def test_interrupted_download_resumes(server, voc_tar, tmp_path):
    data, md5 = voc_tar
    server.files["/voc.tar"] = data
    server.cut_after = len(data) // 3
    with pytest.raises(OSError, match="interrupted"):
        download.download_url(server.url + "/voc.tar", tmp_path, "v.tar", md5=md5, progress=False)
    assert not (tmp_path / "v.tar").exists()  # nothing that looks complete
    partial = tmp_path / "v.tar.part"
    assert partial.stat().st_size == len(data) // 3
    path = download.download_url(
        server.url + "/voc.tar", tmp_path, "v.tar", md5=md5, progress=False
    )
    assert path.read_bytes() == data and not partial.exists()
    assert server.requests[-1][1] == f"bytes={len(data) // 3}-"


def test_resume_restarts_when_the_server_ignores_ranges(server, voc_tar, tmp_path):
    data, md5 = voc_tar
    server.files["/voc.tar"] = data
    server.honour_range = False
    (tmp_path / "v.tar.part").write_bytes(b"garbage from an older attempt")
    path = download.download_url(
        server.url + "/voc.tar", tmp_path, "v.tar", md5=md5, progress=False
    )
    assert path.read_bytes() == data


def test_resume_with_wrong_partial_data_restarts_once(server, voc_tar, tmp_path):
    data, md5 = voc_tar
    server.files["/voc.tar"] = data
    (tmp_path / "v.tar.part").write_bytes(b"x" * 100)  # wrong bytes: the md5 check fails
    path = download.download_url(
        server.url + "/voc.tar", tmp_path, "v.tar", md5=md5, progress=False
    )
    assert path.read_bytes() == data


def test_http_errors_are_clear(server, tmp_path):
    with pytest.raises(OSError, match="HTTP 404"):
        download.download_url(server.url + "/missing.tar", tmp_path, progress=False)


def _tar_with(member: tarfile.TarInfo, payload: bytes = b"") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        ok = tarfile.TarInfo("VOCdevkit/ok.txt")
        ok.size = 2
        tar.addfile(ok, io.BytesIO(b"ok"))
        member.size = len(payload) if member.isfile() else 0
        tar.addfile(member, io.BytesIO(payload) if member.isfile() else None)
    return buffer.getvalue()


def _member(name, kind=tarfile.REGTYPE, linkname=""):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info


@pytest.mark.parametrize(
    "member, reason",
    [
        (_member("../escape.txt"), "outside"),
        (_member("VOCdevkit/../../escape.txt"), "outside"),
        (_member("/tmp/conveyor-absolute.txt"), "absolute"),
        (_member("VOCdevkit/link", tarfile.SYMTYPE, "/etc/passwd"), "link"),
        (_member("VOCdevkit/hard", tarfile.LNKTYPE, "VOCdevkit/ok.txt"), "link"),
        (_member("VOCdevkit/dev", tarfile.CHRTYPE), "device"),
        (_member("VOCdevkit/fifo", tarfile.FIFOTYPE), "device"),
    ],
)
def test_unsafe_archives_are_refused_before_writing(tmp_path, member, reason):
    archive = tmp_path / "evil.tar"
    archive.write_bytes(_tar_with(member, b"evil"))
    target = tmp_path / "out"
    with pytest.raises(RuntimeError, match=reason):
        download.extract_archive(archive, target)
    assert not (tmp_path / "escape.txt").exists()
    assert not (target / "VOCdevkit" / "ok.txt").exists()  # nothing extracted at all


def test_compressed_archives_extract(tmp_path):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo("VOCdevkit/a.txt")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"abc"))
    (tmp_path / "a.tgz").write_bytes(buffer.getvalue())
    download.extract_archive(tmp_path / "a.tgz", tmp_path / "out")
    assert (tmp_path / "out/VOCdevkit/a.txt").read_bytes() == b"abc"
    truncated = buffer.getvalue()[: len(buffer.getvalue()) // 2]
    (tmp_path / "b.tgz").write_bytes(truncated)
    with pytest.raises(RuntimeError, match="corrupt or truncated"):
        download.extract_archive(tmp_path / "b.tgz", tmp_path / "out2")
