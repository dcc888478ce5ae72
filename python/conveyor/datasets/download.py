"""Downloading and extracting dataset archives, carefully.

* The URL can be replaced by an argument or, for mirrors, by the environment variable
  ``CONVEYOR_VOC_MIRROR`` (a base URL: the archive's file name is appended).
* Data goes to ``<file>.part`` and is renamed only once complete and verified (md5), so an
  interrupted download never leaves a file that looks complete. A re-run resumes the
  ``.part`` file with an HTTP range request, or restarts cleanly when the server does not
  support ranges or the partial data turns out wrong.
* Extraction refuses archives with members that would land outside the target directory,
  links, devices or other special files, before writing anything.
"""

from __future__ import annotations

import hashlib
import lzma
import os
import shutil
import tarfile
import urllib.error
import urllib.request
import zlib
from pathlib import Path
from typing import IO, Optional, Union, cast

MIRROR_ENVIRONMENT_VARIABLE = "CONVEYOR_VOC_MIRROR"
_CHUNK = 1 << 20
_USER_AGENT = "conveyor (+https://pypi.org/project/conveyor)"


def resolve_url(default_url: str, filename: str, url: Optional[str] = None) -> str:
    """The URL to download an archive from.

    Args:
        default_url: the official URL.
        filename: the archive's file name (appended to a mirror's base URL).
        url: an explicit URL; wins over everything.

    Returns:
        ``url`` if given, else ``$CONVEYOR_VOC_MIRROR/<filename>`` if that variable is set and
        not empty, else ``default_url``.
    """
    if url:
        return url
    mirror = os.environ.get(MIRROR_ENVIRONMENT_VARIABLE, "").strip()
    if mirror:
        return mirror.rstrip("/") + "/" + filename
    return default_url


def file_md5(path: Union[str, Path], chunk_size: int = _CHUNK) -> str:
    """The hex md5 of a file."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _progress_bar(total: Optional[int], initial: int, name: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(
        total=total,
        initial=initial,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        desc=name,
        disable=not enabled,
    )


def download_url(
    url: str,
    root: Union[str, Path],
    filename: Optional[str] = None,
    md5: Optional[str] = None,
    progress: bool = True,
    timeout: float = 60.0,
) -> Path:
    """Downloads ``url`` to ``root/filename`` atomically (``.part`` file, then rename).

    Args:
        url: what to download (http, https or file URL).
        root: the directory to write into (created if missing).
        filename: the file name (default: the last part of the URL).
        md5: the expected hex md5; a present file with this md5 is not downloaded again.
        progress: show a tqdm progress bar.
        timeout: socket timeout in seconds.

    Returns:
        The path of the complete, verified file.

    Raises:
        RuntimeError: the downloaded data does not have the expected md5 (the bad data is
            deleted, so the next run starts afresh).
        OSError: the download failed or was cut short (the ``.part`` file is kept to resume).
    """
    root = Path(os.path.expanduser(os.fspath(root)))
    root.mkdir(parents=True, exist_ok=True)
    target = root / (filename or os.path.basename(url.rstrip("/")) or "download")
    if target.is_file() and (md5 is None or file_md5(target) == md5):
        return target
    partial = target.with_name(target.name + ".part")
    for attempt in range(2):
        offset = partial.stat().st_size if partial.is_file() else 0
        _fetch(url, partial, offset, progress, timeout)
        if md5 is None or file_md5(partial) == md5:
            os.replace(partial, target)
            return target
        actual = file_md5(partial)
        partial.unlink()
        if offset == 0 or attempt == 1:
            raise RuntimeError(
                f"md5 mismatch for {url}: expected {md5}, got {actual}. The corrupt download was "
                f"deleted; check the URL (or ${MIRROR_ENVIRONMENT_VARIABLE}) and try again."
            )
        # The resumed data did not fit the earlier part: start again from scratch once.
    raise AssertionError("unreachable")


def _fetch(url: str, partial: Path, offset: int, progress: bool, timeout: float) -> None:
    headers = {"User-Agent": _USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as error:
        if error.code == 416 and offset:  # range not satisfiable: the part is already complete
            return
        raise OSError(f"downloading {url} failed: HTTP {error.code} {error.reason}") from error
    except urllib.error.URLError as error:
        raise OSError(f"downloading {url} failed: {error.reason}") from error
    with response:
        status = getattr(response, "status", 200)
        resumed = offset > 0 and status == 206
        mode = "ab" if resumed else "wb"
        start = offset if resumed else 0
        length = response.headers.get("Content-Length")
        expected = int(length) if length and length.isdigit() else None
        received = 0
        with (
            open(partial, mode) as file,
            _progress_bar(
                None if expected is None else start + expected, start, partial.name[:-5], progress
            ) as bar,
        ):
            try:
                while True:
                    chunk = response.read(_CHUNK)
                    if not chunk:
                        break
                    file.write(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
            except (OSError, urllib.error.URLError) as error:
                raise OSError(
                    f"download of {url} interrupted after {start + received} bytes "
                    f"({error}); run again to resume"
                ) from error
        if expected is not None and received < expected:
            raise OSError(
                f"download of {url} interrupted: got {start + received} of "
                f"{start + expected} bytes; run again to resume"
            )


def _check_member(member: tarfile.TarInfo, target: Path, archive: Path) -> Path:
    name = member.name
    if member.issym() or member.islnk():
        raise RuntimeError(f"refusing to extract {archive}: member {name!r} is a link")
    if not (member.isfile() or member.isdir()):
        raise RuntimeError(
            f"refusing to extract {archive}: member {name!r} is a device, FIFO "
            "or other special file"
        )
    if os.path.isabs(name) or name.startswith(("/", "\\")):
        raise RuntimeError(f"refusing to extract {archive}: member {name!r} has an absolute path")
    destination = (target / name).resolve()
    if destination != target and target not in destination.parents:
        raise RuntimeError(
            f"refusing to extract {archive}: member {name!r} would be written outside {target}"
        )
    return destination


def extract_archive(archive: Union[str, Path], target: Union[str, Path]) -> Path:
    """Extracts a tar archive (optionally gzip/bz2/xz compressed) safely into ``target``.

    Every member is checked before anything is written: absolute paths, ``..`` escapes, links,
    devices and FIFOs are refused. Only regular files and directories are created (with default
    permissions; owners and modes in the archive are ignored).

    Args:
        archive: the tar file.
        target: the directory to extract into (created if missing).

    Returns:
        ``target``.

    Raises:
        RuntimeError: the archive is corrupt or holds a refused member.
    """
    archive = Path(archive)
    target = Path(target).resolve()
    target.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()
            destinations = [_check_member(member, target, archive) for member in members]
            for member, destination in zip(members, destinations):
                if member.isdir():
                    destination.mkdir(parents=True, exist_ok=True)
                    continue
                destination.parent.mkdir(parents=True, exist_ok=True)
                # _check_member admitted only directories (handled above) and regular files
                source = cast(IO[bytes], tar.extractfile(member))
                temporary = destination.with_name(destination.name + ".extracting")
                with source, open(temporary, "wb") as out:
                    shutil.copyfileobj(source, out, _CHUNK)
                os.replace(temporary, destination)
    except (tarfile.TarError, EOFError, zlib.error, lzma.LZMAError) as error:
        raise RuntimeError(
            f"cannot extract {archive}: corrupt or truncated archive ({error})"
        ) from error
    return target


def download_and_extract_archive(
    url: str,
    download_root: Union[str, Path],
    extract_root: Optional[Union[str, Path]] = None,
    filename: Optional[str] = None,
    md5: Optional[str] = None,
    remove_finished: bool = False,
    progress: bool = True,
) -> Path:
    """Downloads an archive (see :func:`download_url`) and extracts it safely.

    Args:
        url: the archive's URL.
        download_root: where the archive is stored.
        extract_root: where it is extracted (default: ``download_root``).
        filename: the archive's file name (default: from the URL).
        md5: the expected md5 of the archive.
        remove_finished: delete the archive after extraction.
        progress: show a progress bar.

    Returns:
        The extraction directory.
    """
    archive = download_url(url, download_root, filename=filename, md5=md5, progress=progress)
    target = extract_archive(archive, extract_root if extract_root is not None else download_root)
    if remove_finished:
        archive.unlink()
    return target


__all__ = [
    "MIRROR_ENVIRONMENT_VARIABLE",
    "resolve_url",
    "file_md5",
    "download_url",
    "extract_archive",
    "download_and_extract_archive",
]
