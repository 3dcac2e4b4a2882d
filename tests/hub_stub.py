"""A stand-in model hub on 127.0.0.1 speaking the parts of the Hub API huggingface_hub's
snapshot_download uses (read from huggingface_hub 2.4's source):

- GET  /api/models/{repo_id}[/revision/{rev}]  -> {"id", "sha", "siblings"}      (HfApi.model_info / repo_info)
- GET  /api/models/{repo_id}/tree/{rev}?recursive=… -> [{"type": "file", "path", "size", "oid"}] (list_repo_tree)
- HEAD /{repo_id}/resolve/{rev}/{path} -> X-Repo-Commit, ETag, Content-Length          (get_hf_file_metadata)
- GET  /{repo_id}/resolve/{rev}/{path} -> the bytes                                     (http_get)

Unknown repositories answer 404 with X-Error-Code: RepoNotFound (-> RepositoryNotFoundError).
Serves folders given per repo id; counts requests per file; can slow file bodies down so a test
can cancel mid-download.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit


class StubHub:
    """Serves {repo_id: folder}; use as a context manager; .url is the endpoint."""

    def __init__(self, repos: dict[str, Path], delay: float = 0.0) -> None:
        self.repos = {rid: Path(folder) for rid, folder in repos.items()}
        self.delay = delay  # seconds spent sending each file body
        self.gets: Counter[str] = Counter()  # "repo_id/path" -> GET count of file bodies
        self.requests: list[str] = []  # "METHOD path" of every request
        self.commits = {rid: self._commit(folder) for rid, folder in self.repos.items()}
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                return

            def do_GET(self) -> None:
                hub.handle(self, body=True)

            def do_HEAD(self) -> None:
                hub.handle(self, body=False)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> StubHub:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)

    @staticmethod
    def files(folder: Path) -> dict[str, Path]:
        return {p.relative_to(folder).as_posix(): p for p in sorted(folder.rglob("*")) if p.is_file()}

    def _commit(self, folder: Path) -> str:
        digest = hashlib.sha1()
        for name, path in self.files(folder).items():
            digest.update(name.encode() + hashlib.sha1(path.read_bytes()).digest())
        return digest.hexdigest()

    # ---- requests ------------------------------------------------------------------------------
    def _repo(self, parts: list[str]) -> tuple[str | None, list[str]]:
        for rid in self.repos:
            n = rid.count("/") + 1
            if "/".join(parts[:n]) == rid:
                return rid, parts[n:]
        return None, parts

    def _send(self, h: BaseHTTPRequestHandler, status: int, data: bytes, headers: dict[str, str], body: bool) -> None:
        h.send_response(status)
        for k, v in headers.items():
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        if not body:
            return
        if self.delay and status == 200 and headers.get("Content-Type") == "application/octet-stream":
            step = max(1, len(data) // 4)
            for i in range(0, len(data), step):
                time.sleep(self.delay / 4)
                h.wfile.write(data[i:i + step])
        else:
            h.wfile.write(data)

    def _json(self, h: BaseHTTPRequestHandler, value: object, body: bool) -> None:
        self._send(h, 200, json.dumps(value).encode(), {"Content-Type": "application/json"}, body)

    def _missing(self, h: BaseHTTPRequestHandler, body: bool, code: str = "RepoNotFound") -> None:
        self._send(h, 404, b'{"error": "not found"}', {"Content-Type": "application/json", "X-Error-Code": code},
                   body)

    def handle(self, h: BaseHTTPRequestHandler, body: bool) -> None:
        self.requests.append(f"{h.command} {h.path}")
        parts = [unquote(p) for p in urlsplit(h.path).path.strip("/").split("/")]
        if parts[:2] == ["api", "models"]:
            rid, rest = self._repo(parts[2:])
            if rid is None:
                return self._missing(h, body)
            files = self.files(self.repos[rid])
            if rest[:1] == ["tree"]:
                listing = [{"type": "file", "path": name, "size": path.stat().st_size,
                            "oid": hashlib.sha1(path.read_bytes()).hexdigest()} for name, path in files.items()]
                return self._json(h, listing, body)
            return self._json(h, {"id": rid, "sha": self.commits[rid], "private": False,
                                  "siblings": [{"rfilename": n} for n in files]}, body)
        rid, rest = self._repo(parts)
        if rid is None or len(rest) < 3 or rest[0] != "resolve":
            return self._missing(h, body)
        name = "/".join(rest[2:])
        path = self.files(self.repos[rid]).get(name)
        if path is None:
            return self._missing(h, body, "EntryNotFound")
        data = path.read_bytes()
        if body:
            self.gets[f"{rid}/{name}"] += 1
        headers = {"Content-Type": "application/octet-stream", "X-Repo-Commit": self.commits[rid],
                   "ETag": f'"{hashlib.sha256(data).hexdigest()}"'}
        self._send(h, 200, data, headers, body)
