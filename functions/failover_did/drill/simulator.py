"""Plays Twilio's side of a call against a voice webhook: signed form posts, following the TwiML's
Dial action URLs the way Twilio does. Used by the drill (the CLI's and the console's), `simulate` and the
end-to-end tests."""

from __future__ import annotations

import secrets
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from urllib.parse import urlencode, urlsplit, urlunsplit

from twilio.request_validator import RequestValidator


@dataclass(frozen=True)
class Dial:
    targets: tuple[str, ...]
    action: str
    timeout: int
    screen_urls: tuple[str | None, ...]


@dataclass(frozen=True)
class Reply:
    """A webhook's answer: its HTTP status, the raw body and what the TwiML asks for."""

    status: int
    body: str
    verbs: tuple[str, ...] = ()
    dial: Dial | None = None
    say: str | None = None
    records: bool = False
    record_action: str | None = None  # <Record action=...>: where the message's URL and length go
    recording_callback: str | None = None  # <Record recordingStatusCallback=...>
    transcription_callback: str | None = None  # <Record transcribeCallback=...>

    @property
    def hangs_up(self) -> bool:
        return "Hangup" in self.verbs


def parse_reply(status: int, body: str) -> Reply:
    if status != 200:
        return Reply(status, body)
    root = ET.fromstring(body)
    if root.tag != "Response":
        raise ValueError(f"TwiML root is {root.tag}, not Response")
    dial: Dial | None = None
    say: str | None = None
    for verb in root:
        if verb.tag == "Dial" and dial is None:
            nouns = [n for n in verb if n.tag in ("Number", "Sip")]
            dial = Dial(
                targets=tuple((n.text or "").strip() for n in nouns),
                action=verb.get("action", ""),
                timeout=int(verb.get("timeout", "30")),
                screen_urls=tuple(n.get("url") for n in nouns),
            )
        elif verb.tag == "Say" and say is None:
            say = verb.text or ""
    verbs = tuple(v.tag for v in root)
    record = root.find("Record")
    return Reply(
        status,
        body,
        verbs,
        dial,
        say,
        records=record is not None,
        record_action=record.get("action") if record is not None else None,
        recording_callback=record.get("recordingStatusCallback") if record is not None else None,
        transcription_callback=record.get("transcribeCallback") if record is not None else None,
    )


TEST_MARKER = "test=1"
PLACEHOLDER_ACCOUNT_SID = "AC" + "0" * 32


def marked_as_test(voice_url: str) -> str:
    """The Voice URL with the test-call marker (`test=1`) in its query: the webhook then counts the call
    neither as evidence of a destination's health nor against the monthly budget, and keeps the marker
    on every URL it hands back."""
    parts = urlsplit(voice_url)
    if TEST_MARKER in parts.query.split("&"):
        return voice_url
    query = f"{parts.query}&{TEST_MARKER}" if parts.query else TEST_MARKER
    return urlunsplit(parts._replace(query=query))


class TwilioSimulator:
    def __init__(self, voice_url: str, token: str, timeout: float = 10.0, account_sid: str | None = None) -> None:
        self.voice_url = voice_url
        self.validator = RequestValidator(token)
        self.timeout = timeout
        self.account_sid = account_sid or PLACEHOLDER_ACCOUNT_SID

    def post(self, url: str, params: dict[str, str], signature: str | None = None) -> Reply:
        """POST `params` to `url` signed as Twilio signs (or with the given signature)."""
        sig = self.validator.compute_signature(url, params) if signature is None else signature
        request = urllib.request.Request(
            url,
            data=urlencode(params).encode(),
            method="POST",
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Twilio-Signature": sig,
                "User-Agent": "TwilioProxy/1.1",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return parse_reply(response.status, response.read().decode())
        except urllib.error.HTTPError as error:
            return Reply(error.code, error.read().decode(errors="replace"))

    def call(self, to: str, from_: str = "+14155550999") -> SimulatedCall:
        return SimulatedCall(self, to, from_)


@dataclass
class SimulatedCall:
    sim: TwilioSimulator
    to: str
    from_: str
    sid: str = field(default_factory=lambda: "CA" + secrets.token_hex(16))
    replies: list[Reply] = field(default_factory=list)

    @property
    def base_params(self) -> dict[str, str]:
        return {
            "CallSid": self.sid,
            "AccountSid": self.sim.account_sid,
            "From": self.from_,
            "Caller": self.from_,
            "To": self.to,
            "Called": self.to,
            "Direction": "inbound",
            "ApiVersion": "2010-04-01",
        }

    @property
    def last(self) -> Reply:
        return self.replies[-1]

    @property
    def dialed(self) -> list[str]:
        """Every target dialed so far, in order."""
        return [target for r in self.replies if r.dial for target in r.dial.targets]

    def start(self) -> Reply:
        return self._record(self.sim.post(self.sim.voice_url, {**self.base_params, "CallStatus": "ringing"}))

    def dial_ended(
        self, status: str, *, sip_code: int | None = None, bridged: bool | None = None, caller_gone: bool = False
    ) -> Reply:
        """Report how the leg of the last Dial ended, as Twilio does on its action URL."""
        dial = self.last.dial
        if dial is None:
            raise AssertionError(f"the last reply dials nothing: {self.last.body}")
        params = {
            **self.base_params,
            "CallStatus": "completed" if caller_gone else "in-progress",
            "DialCallStatus": status,
            "DialCallSid": "CA" + secrets.token_hex(16),
            "DialCallDuration": "0",
        }
        if sip_code is not None:
            params["DialSipResponseCode"] = str(sip_code)
        if bridged is not None:
            params["DialBridged"] = "true" if bridged else "false"
        return self._record(self.sim.post(dial.action, params))

    def leave_voicemail(self, seconds: int) -> Reply:
        """The caller speaks for `seconds` after the beep: Twilio posts the Record action."""
        action = self.last.record_action
        if action is None:
            raise AssertionError(f"the last reply records nothing: {self.last.body}")
        params = {**self.base_params, "CallStatus": "in-progress", **self._recording(seconds)}
        return self._record(self.sim.post(action, params))

    def hang_up(self, seconds: int, status: str = "completed") -> Reply:
        """The call is over: Twilio posts the number's call-status callback (the Voice URL's /status)."""
        parts = urlsplit(self.sim.voice_url)
        url = urlunsplit(parts._replace(path=parts.path.rstrip("/") + "/status"))
        return self.sim.post(url, {**self.base_params, "CallStatus": status, "CallDuration": str(seconds)})

    def recording_stored(self, seconds: int) -> Reply:
        """Twilio's recordingStatusCallback once the message is stored (it names the call, not the number);
        `seconds` 0: the caller said nothing (RecordingStatus absent)."""
        url = next((r.recording_callback for r in reversed(self.replies) if r.recording_callback), None)
        if url is None:
            raise AssertionError("no reply asked for a recording status callback")
        status = "completed" if seconds else "absent"
        params = {"AccountSid": self.sim.account_sid, "CallSid": self.sid, "RecordingStatus": status}
        recording = self._recording(seconds) | ({} if seconds else {"RecordingDuration": "-1"})
        return self.sim.post(url, {**params, **recording})

    def transcribed(self, text: str, status: str = "completed") -> Reply:
        """Twilio's transcribeCallback with the voicemail's text (`status` failed: Twilio could not)."""
        url = next((r.transcription_callback for r in reversed(self.replies) if r.transcription_callback), None)
        if url is None:
            raise AssertionError("no reply asked for a transcription callback")
        params = {
            "AccountSid": self.sim.account_sid,
            "CallSid": self.sid,
            "TranscriptionSid": "TR" + self.sid[2:],
            "TranscriptionStatus": status,
            "TranscriptionText": text if status == "completed" else "",
        }
        recording = self._recording(0)
        del recording["RecordingDuration"]
        return self.sim.post(url, {**params, **recording})

    def _recording(self, seconds: int) -> dict[str, str]:
        recording = "RE" + self.sid[2:]
        url = f"https://api.twilio.com/2010-04-01/Accounts/{self.sim.account_sid}/Recordings/{recording}"
        return {"RecordingSid": recording, "RecordingUrl": url, "RecordingDuration": str(seconds)}

    def _record(self, reply: Reply) -> Reply:
        self.replies.append(reply)
        return reply


def describe(reply: Reply) -> str:
    """What a webhook answered, in a few words."""
    if reply.status != 200:
        return f"HTTP {reply.status}: {reply.body.strip()}"
    if reply.dial:
        screen = " (screened: press 1)" if any(reply.dial.screen_urls) else ""
        return f"dial {', '.join(reply.dial.targets)} for {reply.dial.timeout} s{screen}"
    parts = [f"say {reply.say!r}"] if reply.say else []
    if reply.records:
        parts.append("record voicemail")
    if reply.hangs_up:
        parts.append("hang up")
    return "; ".join(parts) or "nothing more"
