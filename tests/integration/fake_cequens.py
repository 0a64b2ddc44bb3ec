"""A local stand-in for Cequens' SMS API (POST /sms/v1/messages, bearer token): it records
every request it gets, answers 401 to a wrong token, 503 while `accepting` is off, and
otherwise what Cequens answers, with a fresh SMSId per message."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

API_KEY = "test-cequens-token-0123456789"


@dataclass
class Received:
    authorization: str | None
    body: dict[str, Any]
    answered: int
    sms_id: str | None


@dataclass
class FakeCequens:
    url: str = ""
    accepting: bool = True
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def accepted(self) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.answered == 200]

    def refused_count(self) -> int:
        with self.lock:
            return sum(1 for r in self.received if r.answered != 200)


def _handler(fake: FakeCequens) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            auth = self.headers.get("Authorization")
            body = json.loads(raw or b"{}")
            sms_id: str | None = None
            answer: dict[str, Any]
            if self.path != "/sms/v1/messages":
                status, answer = 404, {"replyCode": 404}
            elif auth != f"Bearer {API_KEY}":
                status, answer = 401, {"replyCode": 401, "replyMessage": "Unauthorized"}
            elif not fake.accepting:
                status, answer = 503, {"replyCode": 503}
            else:
                sms_id = str(uuid.uuid4())
                status, answer = (
                    200,
                    {
                        "replyCode": 0,
                        "replyMessage": "Request handled successfully",
                        "requestId": str(uuid.uuid4()),
                        "clientRequestId": 0,
                        "data": {"SentSMSIDs": [{"SMSId": sms_id}], "InvalidRecipients": ""},
                    },
                )
            with fake.lock:
                fake.received.append(Received(auth, body, status, sms_id))
            payload = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            return  # quiet: the phone numbers stay out of the test output

    return Handler


@contextmanager
def fake_cequens(accepting: bool = True) -> Iterator[FakeCequens]:
    fake = FakeCequens(accepting=accepting)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
