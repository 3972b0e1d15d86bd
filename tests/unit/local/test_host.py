from __future__ import annotations

import socket
from pathlib import Path

from dataops.local.base_image import apt_mirror
from dataops.local.host import port_holder, port_is_free, requirements


def test_requirements_list_names_packages_and_programs() -> None:
    reqs = {r.package: r for r in requirements()}
    assert {"docker.io", "docker-registry", "postgresql", "debootstrap", "skopeo"} <= set(reqs)
    assert reqs["docker-registry"].name == "docker-registry"


def test_apt_mirror_reads_deb822_and_one_line_sources(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://mirror.example/debian/\nSuites: bookworm\n"
    )
    assert apt_mirror(tmp_path) == "http://mirror.example/debian"
    (tmp_path / "sources.list").write_text(
        "deb [arch=amd64] http://other.example/debian bookworm main\n"
    )
    assert apt_mirror(tmp_path) == "http://other.example/debian"


def test_port_holder_finds_the_listening_process() -> None:
    import os

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert not port_is_free(port)
        holder = port_holder(port)
        assert holder is not None and holder[0] == os.getpid()
    assert port_is_free(port)
