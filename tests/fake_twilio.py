"""A fake of the two Twilio REST endpoints `failover-did twilio attach` uses, on 127.0.0.1, in a thread.

GET  /2010-04-01/Accounts/{AccountSid}/IncomingPhoneNumbers.json?PhoneNumber=...  (a list page)
POST /2010-04-01/Accounts/{AccountSid}/IncomingPhoneNumbers/{Sid}.json           (form-encoded update)

Every request needs HTTP basic auth: the account SID and its auth token, or an API key SID and its secret
belonging to the account; anything else gets Twilio's 401 error JSON. Every request is recorded.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

ACCOUNT_SID = "AC" + "a" * 32
AUTH_TOKEN = "fake-auth-token-0123456789abcdef"
API_KEY = "SK" + "b" * 32
API_SECRET = "fake-api-secret"
API = "/2010-04-01"
LIST_PATH = re.compile(rf"^{API}/Accounts/(?P<account>AC\w+)/IncomingPhoneNumbers\.json$")
ITEM_PATH = re.compile(rf"^{API}/Accounts/(?P<account>AC\w+)/IncomingPhoneNumbers/(?P<sid>PN\w+)\.json$")
# The update parameters this fake understands (Twilio's names), mapped to the record's fields.
UPDATABLE = {
    "VoiceUrl": "voice_url",
    "VoiceMethod": "voice_method",
    "VoiceFallbackUrl": "voice_fallback_url",
    "VoiceFallbackMethod": "voice_fallback_method",
    "StatusCallback": "status_callback",
    "StatusCallbackMethod": "status_callback_method",
    "VoiceApplicationSid": "voice_application_sid",
    "TrunkSid": "trunk_sid",
    "FriendlyName": "friendly_name",
}
METHODS = {"GET", "POST"}


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    form: dict[str, str]
    user: str | None
    status: int


@dataclass
class FakeTwilio:
    base_url: str = ""
    numbers: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)
    # username -> (password, account it acts for)
    logins: dict[str, tuple[str, str]] = field(
        default_factory=lambda: {ACCOUNT_SID: (AUTH_TOKEN, ACCOUNT_SID), API_KEY: (API_SECRET, ACCOUNT_SID)}
    )

    def add_number(self, phone_number: str, account_sid: str = ACCOUNT_SID, **fields: Any) -> dict[str, Any]:
        sid = "PN" + f"{len(self.numbers) + 1:032x}"
        uri = f"{API}/Accounts/{account_sid}/IncomingPhoneNumbers/{sid}.json"
        record: dict[str, Any] = {
            "account_sid": account_sid,
            "address_requirements": "none",
            "address_sid": None,
            "api_version": "2010-04-01",
            "beta": False,
            "bundle_sid": None,
            "capabilities": {"voice": True, "sms": True, "mms": True, "fax": False},
            "date_created": "Thu, 30 Jul 2015 23:19:04 +0000",
            "date_updated": "Thu, 30 Jul 2015 23:19:04 +0000",
            "emergency_address_sid": None,
            "emergency_address_status": "unregistered",
            "emergency_status": "Active",
            "friendly_name": phone_number,
            "identity_sid": None,
            "origin": "twilio",
            "phone_number": phone_number,
            "sid": sid,
            "sms_application_sid": "",
            "sms_fallback_method": "POST",
            "sms_fallback_url": "",
            "sms_method": "POST",
            "sms_url": "",
            "status": "in-use",
            "status_callback": "",
            "status_callback_method": "POST",
            "subresource_uris": {"assigned_add_ons": uri.replace(".json", "/AssignedAddOns.json")},
            "trunk_sid": None,
            "uri": uri,
            "voice_application_sid": None,
            "voice_caller_id_lookup": False,
            "voice_fallback_method": "POST",
            "voice_fallback_url": None,
            "voice_method": "POST",
            "voice_receive_mode": "voice",
            "voice_url": None,
        }
        record.update(fields)
        self.numbers[sid] = record
        return record

    def posts(self) -> list[Recorded]:
        return [r for r in self.requests if r.method == "POST"]

    def handle(self, method: str, target: str, headers: Any, body: bytes) -> tuple[int, dict[str, Any]]:
        parts = urlsplit(target)
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        form = {k: v[-1] for k, v in parse_qs(body.decode(), keep_blank_values=True).items()} if body else {}
        user, account = self.authenticate(headers.get("Authorization", ""))
        if account is None:
            status, payload = 401, error(20003, "Authenticate", 401, "Your AccountSid or AuthToken was incorrect.")
        else:
            status, payload = self.route(method, parts.path, query, form, account)
        self.requests.append(Recorded(method, parts.path, query, form, user, status))
        return status, payload

    def authenticate(self, header: str) -> tuple[str | None, str | None]:
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return None, None
        try:
            user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None, None
        login = self.logins.get(user)
        return user, (login[1] if login is not None and login[0] == password else None)

    def route(
        self, method: str, path: str, query: dict[str, str], form: dict[str, str], account: str
    ) -> tuple[int, dict[str, Any]]:
        listing, item = LIST_PATH.match(path), ITEM_PATH.match(path)
        match = listing or item
        if match is None or match["account"] != account:
            return 404, error(20404, f"The requested resource {path} was not found", 404)
        if listing and method == "GET":
            return 200, self.list_page(path, query, account)
        if item and method == "POST":
            record = self.numbers.get(item["sid"])
            if record is None or record["account_sid"] != account:
                return 404, error(20404, f"The requested resource {path} was not found", 404)
            return self.update(record, form)
        return 405, error(20004, "Method not allowed", 405)

    def list_page(self, path: str, query: dict[str, str], account: str) -> dict[str, Any]:
        # Twilio matches PhoneNumber as a pattern (its digits anywhere in the number), not exactly.
        pattern = query.get("PhoneNumber", "")
        digits = "".join(c for c in pattern if c.isdigit())
        page_size = int(query.get("PageSize", "50"))
        found = [r for r in self.numbers.values() if r["account_sid"] == account and digits in r["phone_number"]][
            :page_size
        ]
        first = f"{path}?PageSize={page_size}&Page=0" + (f"&PhoneNumber={pattern}" if pattern else "")
        return {
            "end": max(len(found) - 1, 0),
            "first_page_uri": first,
            "incoming_phone_numbers": found,
            "next_page_uri": None,
            "page": 0,
            "page_size": page_size,
            "previous_page_uri": None,
            "start": 0,
            "uri": first,
        }

    def update(self, record: dict[str, Any], form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        unknown = sorted(set(form) - set(UPDATABLE))
        if unknown:
            return 400, error(20001, f"Unknown parameters: {', '.join(unknown)}", 400)
        for name in ("VoiceMethod", "VoiceFallbackMethod"):
            if name in form and form[name] not in METHODS:
                return 400, error(21606, f"{name} must be GET or POST", 400)
        for name, value in form.items():
            record[UPDATABLE[name]] = value or None
        record["date_updated"] = "Fri, 31 Jul 2015 10:00:00 +0000"
        return 200, record


def error(code: int, message: str, status: int, detail: str | None = None) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    if detail:
        payload["detail"] = detail
    return payload


class Server:
    """The fake behind ThreadingHTTPServer on 127.0.0.1 and a free port."""

    def __init__(self, fake: FakeTwilio) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.answer()

            def do_POST(self) -> None:
                self.answer()

            def answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                status, payload = fake.handle(self.command, self.path, self.headers, self.rfile.read(length))
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                if status == 401:
                    self.send_header("WWW-Authenticate", 'Basic realm="Twilio API"')
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-twilio", daemon=True
        )
        host, port = self.httpd.server_address[:2]
        fake.base_url = f"http://{host!s}:{port}"

    def __enter__(self) -> Server:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)
