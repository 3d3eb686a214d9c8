"""A local stand-in for the Hugging Face Hub's HTTP API: enough of it for ``HfApi.whoami``, ``create_repo``
and ``upload_folder`` (huggingface_hub 2.x), reached through ``HF_ENDPOINT``.

Endpoints (as the real Hub answers them): ``GET /api/whoami-v2`` (401 without a known token),
``GET /api/<type>s/<org>/<name>`` (repo info with its ``private`` flag; 404 ``RepoNotFound`` for no repo),
``POST /api/repos/create`` (409 for a repo that exists, which keeps its visibility: ``create_repo(exist_ok=True)``
then goes on as if it had made it), ``POST /api/validate-yaml``, ``POST /api/<type>s/<org>/<name>/preupload/<rev>``
(every file "regular": no LFS / Xet transfer), ``POST /api/<type>s/<org>/<name>/commit/<rev>`` (NDJSON,
base64 file content).
Committed files land in ``<root>/<org>/<name>/``; ``requests`` lists (method, path) of every call and
``repos`` the created repos with their ``private`` flag (set it to make a repo public or private "on the Hub").

    with FakeHub(tmp_path / "hub", tokens={"hf_abc": "write"}) as url:
        monkeypatch.setenv("HF_ENDPOINT", url)
"""

from __future__ import annotations

import base64
import json
import re
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from tests.stand_ins.local_server import LocalServer


class FakeHub(LocalServer):
    def __init__(self, root: Path, tokens: dict[str, str] | None = None, user: str = "tester"):
        self.root = Path(root)
        self.tokens = dict(tokens or {})  # token -> role ("write" / "read")
        self.user = user
        self.requests: list[tuple[str, str]] = []
        self.repos: dict[str, dict] = {}

    def start(self) -> str:
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _json(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _token(self) -> str | None:
                auth = self.headers.get("Authorization", "")
                return auth.removeprefix("Bearer ").strip() or None

            def _authorised(self, write: bool) -> bool:
                role = hub.tokens.get(self._token() or "")
                if role is None:
                    self._json(401, {"error": "Invalid credentials in Authorization header"})
                    return False
                if write and role != "write":
                    self._json(403, {"error": "You don't have the rights to write to this repo"})
                    return False
                return True

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def do_GET(self):
                hub.requests.append(("GET", self.path))
                if self.path.startswith("/api/whoami-v2"):
                    if self._authorised(write=False):
                        role = hub.tokens[self._token()]
                        self._json(
                            200,
                            {
                                "type": "user",
                                "name": hub.user,
                                "auth": {"type": "access_token", "accessToken": {"displayName": "t", "role": role}},
                            },
                        )
                    return
                m = re.match(r"^/api/(\w+)s/([^/]+/[^/?]+)(?:/revision/[^/?]+)?(?:\?.*)?$", self.path)
                if m and m.group(1) in ("dataset", "model", "space"):
                    repo = hub.repos.get(m.group(2))
                    if repo is None or repo["type"] != m.group(1) or (repo["private"] and not self._token()):
                        self._not_found()
                        return
                    self._json(
                        200,
                        {"id": m.group(2), "private": repo["private"], "sha": "0" * 40, "siblings": [], "tags": []},
                    )
                    return
                self._json(404, {"error": "not found"})

            def _not_found(self) -> None:
                data = json.dumps({"error": "Repository not found"}).encode()
                self.send_response(404)
                self.send_header("Content-Type", "application/json")
                self.send_header("X-Error-Code", "RepoNotFound")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):
                hub.requests.append(("POST", self.path))
                body = self._body()
                if not self._authorised(write=True):
                    return
                endpoint = f"http://{self.headers.get('Host')}"
                if self.path.startswith("/api/validate-yaml"):  # the card's metadata: accepted as is
                    self._json(200, {"errors": [], "warnings": []})
                    return
                if self.path.startswith("/api/repos/create"):
                    req = json.loads(body)
                    repo_id = f"{req.get('organization') or hub.user}/{req['name']}"
                    if repo_id in hub.repos:  # the real Hub: 409, and the existing repo stays as it is
                        url = f"{endpoint}/datasets/{repo_id}"
                        self._json(409, {"error": "You already created this dataset repo", "url": url})
                        return
                    hub.repos[repo_id] = {
                        "type": req.get("type", "model"),
                        "private": req.get("visibility", "private" if req.get("private") else "public") != "public",
                    }
                    (hub.root / repo_id).mkdir(parents=True, exist_ok=True)
                    self._json(200, {"url": f"{endpoint}/datasets/{repo_id}", "name": repo_id})
                    return
                m = re.match(r"^/api/(\w+)s/([^/]+/[^/]+)/(preupload|commit)/([^/?]+)", self.path)
                if not m or m.group(2) not in hub.repos:
                    self._json(404, {"error": "Repository not found"})
                    return
                kind, repo_id, action = m.group(1), m.group(2), m.group(3)
                if action == "preupload":
                    files = json.loads(body)["files"]
                    self._json(
                        200,
                        {"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files]},
                    )
                    return
                for line in body.decode().splitlines():
                    item = json.loads(line)
                    if item["key"] == "file":
                        target = hub.root / repo_id / item["value"]["path"]
                        target.parent.mkdir(parents=True, exist_ok=True)
                        target.write_bytes(base64.b64decode(item["value"]["content"]))
                oid = "0" * 40
                self._json(200, {"commitUrl": f"{endpoint}/{kind}s/{repo_id}/commit/{oid}", "commitOid": oid})

        return self.serve(Handler)
