"""A local stand-in for the Hugging Face hub's HTTP API, so downloads run through huggingface_hub itself offline.

It answers the three requests a download makes: `paths-info` (which files a repository has, with sizes and
checksums), and HEAD then GET of `/<repo>/resolve/<revision>/<file>` (with the hub's headers, and byte ranges so
an interrupted download resumes). `.safetensors` and `.bin` files are served as large (LFS) files, as on the hub.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

COMMIT = "0123456789abcdef0123456789abcdef01234567"
_RESOLVE = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/[^/]+/(?P<file>.+)$")
_PATHS_INFO = re.compile(r"^/api/models/(?P<repo>[^/]+/[^/]+)/paths-info/[^/]+$")


def git_blob_id(data: bytes) -> str:
    return hashlib.sha1(f"blob {len(data)}\0".encode() + data).hexdigest()


def is_large(name: str) -> bool:
    return name.endswith((".safetensors", ".bin"))


class FakeHub:
    """`with FakeHub({"org/repo": {"file": b"..."}}) as hub:` serves at `hub.url`; `seconds_per_mb` slows the
    transfer so progress can be watched; `requests` lists (method, path) of what was asked."""

    def __init__(self, repos: dict[str, dict[str, bytes]], seconds_per_mb: float = 0.0) -> None:
        self.repos, self.seconds_per_mb = repos, seconds_per_mb
        self.requests: list[tuple[str, str]] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> FakeHub:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def entry(self, repo: str, name: str) -> dict:
        data = self.repos[repo][name]
        entry = {"type": "file", "path": name, "size": len(data), "oid": git_blob_id(data)}
        if is_large(name):
            entry["lfs"] = {"oid": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134}
        return entry

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # quiet
                pass

            def do_POST(self) -> None:
                hub.requests.append(("POST", self.path))
                match = _PATHS_INFO.match(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                form = urllib.parse.parse_qs(self.rfile.read(length).decode())
                if match is None or match["repo"] not in hub.repos:
                    return self._answer(404, b'{"error": "Repository not found"}')
                files = hub.repos[match["repo"]]
                body = [hub.entry(match["repo"], name) for name in form.get("paths", []) if name in files]
                self._answer(200, json.dumps(body).encode(), {"Content-Type": "application/json"})

            def do_HEAD(self) -> None:
                self._resolve(send_body=False)

            def do_GET(self) -> None:
                self._resolve(send_body=True)

            def _resolve(self, send_body: bool) -> None:
                hub.requests.append((self.command, self.path))
                match = _RESOLVE.match(urllib.parse.unquote(self.path))
                data = match and hub.repos.get(match["repo"], {}).get(match["file"])
                if data is None:
                    return self._answer(404, b"Entry not found", {"X-Error-Code": "EntryNotFound"})
                entry = hub.entry(match["repo"], match["file"])
                etag = entry["lfs"]["oid"] if "lfs" in entry else entry["oid"]
                headers = {"X-Repo-Commit": COMMIT, "ETag": f'"{etag}"', "Accept-Ranges": "bytes"}
                if "lfs" in entry:
                    headers |= {"X-Linked-Etag": f'"{etag}"', "X-Linked-Size": str(len(data))}
                start = 0
                ranged = re.match(r"bytes=(\d+)-", self.headers.get("Range") or "")
                if ranged and send_body:
                    start = int(ranged[1])
                    headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
                self._answer(206 if start else 200, data[start:] if send_body else b"", headers,
                             length=len(data) - start)

            def _answer(self, code: int, body: bytes, headers: dict[str, str] | None = None,
                        length: int | None = None) -> None:
                self.send_response(code)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body) if length is None else length))
                self.end_headers()
                for offset in range(0, len(body), 1 << 18):
                    self.wfile.write(body[offset:offset + (1 << 18)])
                    if hub.seconds_per_mb:
                        time.sleep(hub.seconds_per_mb / 4)

        return Handler
