"""HTTPS downloads that work behind a TLS-inspecting proxy."""

from __future__ import annotations

import os
import ssl
from pathlib import Path


def tls_context() -> ssl.SSLContext:
    """The system CA bundle first (on hosts behind a TLS-inspecting proxy it holds the proxy's
    CA), else Python's default."""
    cafile = os.environ.get("SSL_CERT_FILE") or "/etc/ssl/certs/ca-certificates.crt"
    if Path(cafile).is_file():
        return ssl.create_default_context(cafile=cafile)
    return ssl.create_default_context()
