"""A loopback stand-in of the Hugging Face Hub, for testing a push only: it answers the calls
``create_repo`` and ``upload_folder`` make (files sent inline, as "regular") and records every request."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class HubLog:
    requests: list[Recorded] = field(default_factory=list)
    repos: dict[str, dict[str, Any]] = field(default_factory=dict)
    files: dict[str, dict[str, bytes]] = field(default_factory=dict)


def _handler(log: HubLog, endpoint: list[str]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _reply(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            log.requests.append(Recorded("POST", self.path, dict(self.headers.items()), body))
            path = self.path.split("?")[0]
            if path == "/api/validate-yaml":  # the dataset card's metadata is checked before the commit
                return self._reply(200, {"errors": [], "warnings": []})
            if path == "/api/repos/create":
                request = json.loads(body)
                repo_id = (
                    f"{request['organization']}/{request['name']}"
                    if request.get("organization")
                    else request["name"]
                )
                log.repos[repo_id] = request
                return self._reply(200, {"url": f"{endpoint[0]}/datasets/{repo_id}"})
            parts = path.split("/")  # /api/datasets/{ns}/{name}/(preupload|commit)/{revision}
            if len(parts) == 7 and parts[:3] == ["", "api", "datasets"]:
                repo_id = f"{parts[3]}/{parts[4]}"
                if parts[5] == "preupload":
                    files = [
                        {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False}
                        for f in json.loads(body)["files"]
                    ]
                    return self._reply(200, {"files": files})
                if parts[5] == "commit":
                    stored = log.files.setdefault(repo_id, {})
                    for line in body.decode().splitlines():
                        item = json.loads(line)
                        if item["key"] == "file":
                            stored[item["value"]["path"]] = base64.b64decode(item["value"]["content"])
                    return self._reply(
                        200,
                        {
                            "commitUrl": f"{endpoint[0]}/datasets/{repo_id}/commit/{'0' * 40}",
                            "commitOid": "0" * 40,
                            "pullRequestUrl": None,
                        },
                    )
            return self._reply(404, {"error": f"the stand-in Hub has no {path}"})

    return Handler


@contextmanager
def hub_standin() -> Iterator[tuple[str, HubLog]]:
    log, endpoint = HubLog(), [""]
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(log, endpoint))
    endpoint[0] = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield endpoint[0], log
    finally:
        server.shutdown()
        server.server_close()
