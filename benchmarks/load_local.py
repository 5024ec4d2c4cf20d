"""Load on `failover-did local`: many concurrent calls walking their cascades while rule edits land.

Starts `failover-did local` as a subprocess on free loopback ports (the end-to-end tests' `start_local`),
then plays Twilio's side of N calls, C at a time, each a thread driving `TwilioSimulator`: the incoming
call, then one Dial action callback per leg (busy, no-answer, failed, a SIP 5xx... or answered at a random
tier, or the caller hanging up), checking every reply's TwiML against the rule. Meanwhile editors keep
re-applying rule edits to a *different* number every `--edit-interval` seconds (all on the same ticks, so
they race and the optimistic lock refuses some): `--edit-via api` runs each editor as a process applying
files through the same function as `failover-did rules apply` (rules_cmd.apply_file) against the moto
server, `--edit-via cli` runs the `failover-did rules apply FILE` command for each edit.

Printed: requests, errors (any non-200, transport failure or wrong TwiML), latency per request (p50, p95,
p99, max), throughput, whether every call is in the call log whole (each dial with the outcome Twilio
reported: a log write skipped under load would hide a missed call), edits applied and refused
(ConcurrentEdit), and whether no edit was lost: the stored rule equals the last applied edit and the
applied edits hold every version in between, each once. Figures only, no assertion on time; the exit
status is 1 on any request error, call not logged whole, failed edit or lost edit.

    .venv/bin/python benchmarks/load_local.py [--calls 1000] [--concurrency 50] [--editors 2]
        [--edit-interval 0.2] [--edit-via api|cli] [--seed 1] [--containers N]

Only phone-number targets are used: they are never probed, so the health checker sends nothing off this
machine and never skips a tier, and each call's dialed sequence follows from its rule alone.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from failover_did_cli.callsim import Reply, TwilioSimulator  # noqa: E402

if TYPE_CHECKING:
    from tests.e2e.conftest import RunningStack

# --- the rules under load ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Leg:
    """How one dialed leg ends, as Twilio reports it on the Dial action URL, and what that should do."""

    status: str
    kind: str  # "fails over" | "not a trigger" | "answered" | "caller hung up"
    sip_code: int | None = None
    bridged: bool | None = None
    caller_gone: bool = False

    def __str__(self) -> str:
        return (
            self.status + (f"/{self.sip_code}" if self.sip_code else "") + ("/caller-gone" if self.caller_gone else "")
        )


ANSWERED = Leg("completed", "answered", bridged=True)
CALLER_HUNG_UP = (Leg("canceled", "caller hung up"), Leg("no-answer", "caller hung up", caller_gone=True))


@dataclass(frozen=True)
class NumberSpec:
    number: str
    tiers: tuple[tuple[str, int], ...]  # (target, timeout)
    triggers: tuple[str, ...]
    final_say: str
    voicemail: bool
    failing_over: tuple[Leg, ...]  # leg endings that match a trigger
    ending: tuple[Leg, ...] = ()  # leg endings that match none: straight to the final treatment

    def doc(self) -> dict[str, Any]:
        (primary, primary_timeout), *rest = self.tiers
        return {
            "primary": {"target": primary, "timeout": primary_timeout},
            "failover": [{"target": target, "timeout": timeout} for target, timeout in rest],
            "triggers": list(self.triggers),
            "final": {"say": self.final_say, "voicemail": self.voicemail},
        }


UNDER_LOAD = (
    NumberSpec(
        "+14155550100",
        (("+14155550101", 15), ("+14155550111", 20), ("+14155550112", 30)),
        ("timeout", "busy", "failed", "503"),
        "Sorry, nobody can take your call.",
        True,
        (Leg("busy", "fails over"), Leg("no-answer", "fails over"), Leg("failed", "fails over"),
         Leg("failed", "fails over", sip_code=503)),
    ),
    NumberSpec(
        "+14155550200",
        (("+14155550201", 25), ("+14155550222", 20), ("+14155550223", 40)),
        ("busy", "failed", "5xx"),
        "Sales is closed.",
        False,
        (Leg("busy", "fails over"), Leg("failed", "fails over"), Leg("failed", "fails over", sip_code=502)),
        (Leg("no-answer", "not a trigger"),),
    ),
)  # fmt: skip
TWILIO_WEBHOOK_TIMEOUT = 15.0  # seconds Twilio waits for a voice webhook's answer
EDITED_NUMBER = "+14155550400"
EDITED_TARGETS = ("+14155550444", "+14155550445")


def rules_yaml(specs: tuple[NumberSpec, ...] = UNDER_LOAD) -> str:
    doc = {"numbers": {spec.number: spec.doc() for spec in specs}}
    doc["numbers"][EDITED_NUMBER] = edit_doc(0, 0).rule
    return yaml.safe_dump(doc, sort_keys=False)


@dataclass(frozen=True)
class EditDoc:
    editor: int
    serial: int
    timeout: int
    say: str

    @property
    def rule(self) -> dict[str, Any]:
        return {
            "primary": {"target": EDITED_TARGETS[0], "timeout": self.timeout},
            "failover": [{"target": EDITED_TARGETS[1]}],
            "final": {"say": self.say, "voicemail": False},
        }

    def yaml(self) -> str:
        return yaml.safe_dump({"numbers": {EDITED_NUMBER: self.rule}}, sort_keys=False)


def edit_doc(editor: int, serial: int) -> EditDoc:
    """Edit `serial` of editor `editor`: a new timeout, and a say text no other edit has."""
    # At most 270 s: with tier 1 (20 s) and what Twilio adds, the cascade stays within the 300 s allowed.
    return EditDoc(editor, serial, 5 + (serial * 7 + editor * 3) % 266, f"edit {editor}-{serial}")


# --- calls -------------------------------------------------------------------------------------------


def plan_call(spec: NumberSpec, rng: random.Random) -> list[Leg]:
    """How each leg of one call ends: failures that walk the cascade, until someone answers, the caller
    hangs up, an outcome that is not a trigger ends it, or the last tier fails (the final treatment)."""
    legs: list[Leg] = []
    for _ in spec.tiers:
        roll = rng.random()
        if roll < 0.2:
            return [*legs, ANSWERED]
        if roll < 0.25:
            return [*legs, rng.choice(CALLER_HUNG_UP)]
        if spec.ending and roll < 0.32:
            return [*legs, rng.choice(spec.ending)]
        legs.append(rng.choice(spec.failing_over))
    return legs


def expected_dialed(spec: NumberSpec, legs: list[Leg]) -> list[str]:
    return [target for target, _ in spec.tiers[: len(legs)]]


def outcome_of(spec: NumberSpec, legs: list[Leg]) -> str:
    last = legs[-1]
    if last.kind in ("answered", "caller hung up"):
        return last.kind
    return "final"


@dataclass
class CallResult:
    number: str
    legs: list[Leg]
    expected: list[str]
    sid: str = ""
    dialed: list[str] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)
    requests: int = 0
    error: str | None = None
    transport_error: bool = False  # the request never got an HTTP answer (reset, refused, timed out)

    @property
    def ok(self) -> bool:
        return self.error is None and self.dialed == self.expected


def check_reply(spec: NumberSpec, reply: Reply, legs_done: list[Leg]) -> str | None:
    """Why `reply` is wrong after the legs so far ended as `legs_done` (none: the incoming call), or None."""
    if reply.status != 200:
        return f"HTTP {reply.status}: {reply.body.strip()[:120]}"
    index = len(legs_done)  # the tier this reply should dial, if any
    last = legs_done[-1] if legs_done else None
    if last is not None and last.kind in ("answered", "caller hung up"):
        return None if reply.verbs == ("Hangup",) and reply.dial is None else f"expected <Hangup/>: {reply.body}"
    if (last is None or last.kind == "fails over") and index < len(spec.tiers):
        target, timeout = spec.tiers[index]
        dial = reply.dial
        if dial is None or dial.targets != (target,) or dial.timeout != timeout or reply.verbs != ("Dial",):
            return f"expected a Dial of {target} for {timeout} s: {reply.body}"
        if not re.search(rf"/voice/action\?tier={index}&hop={index + 1}(&start=[0-9]+)?$", dial.action):
            return f"unexpected action URL {dial.action}"
        return None
    if reply.dial is not None or reply.say != spec.final_say or reply.records != spec.voicemail or not reply.hangs_up:
        return f"expected the final treatment ({spec.final_say!r}, voicemail {spec.voicemail}): {reply.body}"
    return None


def run_call(sim: TwilioSimulator, spec: NumberSpec, legs: list[Leg]) -> CallResult:
    call = sim.call(spec.number)
    result = CallResult(spec.number, legs, expected_dialed(spec, legs), call.sid)

    def timed(send: Callable[[], Reply]) -> Reply:
        started = time.perf_counter()
        result.requests += 1
        try:
            return send()
        finally:
            result.latencies_ms.append((time.perf_counter() - started) * 1000)

    try:
        problem = check_reply(spec, timed(call.start), [])
        for done, leg in enumerate(legs, start=1):
            if problem is not None:
                break
            reply = timed(
                lambda leg=leg: call.dial_ended(  # type: ignore[misc]
                    leg.status, sip_code=leg.sip_code, bridged=leg.bridged, caller_gone=leg.caller_gone
                )
            )
            problem = check_reply(spec, reply, legs[:done])
    except Exception as error:  # a transport failure, unparsable TwiML...: an error like any other
        problem = f"{type(error).__name__}: {error}"
        result.transport_error = isinstance(error, OSError | http.client.HTTPException)
    result.dialed = call.dialed
    if problem is None and result.dialed != result.expected:
        problem = f"dialed {result.dialed}, expected {result.expected}"
    if problem is not None:
        result.error = f"call to {spec.number} ({' -> '.join(map(str, legs))}): {problem}"
    return result


def run_calls(sim: TwilioSimulator, calls: int, concurrency: int, seed: int) -> tuple[list[CallResult], float]:
    sim.timeout = TWILIO_WEBHOOK_TIMEOUT
    rng = random.Random(seed)
    plans = []
    for _ in range(calls):
        spec = rng.choice(UNDER_LOAD)
        plans.append((spec, plan_call(spec, rng)))
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="call") as pool:
        results = list(pool.map(lambda plan: run_call(sim, *plan), plans))
    return results, time.perf_counter() - started


# --- rule edits --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Edit:
    editor: int
    serial: int
    say: str
    timeout: int
    result: str  # "applied" | "refused" (ConcurrentEdit) | "unavailable" (the store timed out) | "crashed"
    version: int | None
    detail: str
    seconds: float


def next_tick(interval: float) -> None:
    """Sleep to the next multiple of `interval` of the wall clock: every editor wakes at the same moment."""
    time.sleep(interval - time.time() % interval)


def editor_process(editor: int, endpoint: str, workdir: Path, interval: float) -> int:
    """One editor (a process of its own): apply a new edit every tick through rules_cmd.apply_file, the
    function behind `failover-did rules apply`, against the local stack's AWS emulation; print each result
    as a JSON line. Stops when `workdir/stop` appears or the parent goes away."""
    from failover_did_cli.env import LOCAL_ENV, use_local_stack_if_set

    os.environ[LOCAL_ENV] = endpoint
    use_local_stack_if_set()
    import click

    from failover_did.store.rules_store import ConcurrentEdit
    from failover_did_cli.rules_cmd import apply_file

    parent = os.getppid()
    print(json.dumps({"ready": editor}), flush=True)
    serial = 0
    while not (workdir / "stop").exists() and os.getppid() == parent:
        next_tick(interval)
        serial += 1
        doc = edit_doc(editor, serial)
        path = workdir / f"edit-{editor}-{serial}.yaml"
        path.write_text(doc.yaml())
        started = time.perf_counter()
        version: int | None = None
        try:
            changes = [c for c in apply_file(path) if c.number == EDITED_NUMBER]
            result, version, detail = "applied", changes[0].version, changes[0].action
        except click.ClickException as error:  # the command's own one-line refusal
            result = "refused" if isinstance(error.__cause__, ConcurrentEdit) else "unavailable"
            detail = error.message
        except (Exception, SystemExit) as error:  # what the command would show as a traceback
            frames = traceback.format_tb(error.__traceback__)[-4:]
            result, detail = "crashed", f"{type(error).__name__}: {error}\n{''.join(frames)}"
        edit = Edit(editor, serial, doc.say, doc.timeout, result, version, detail, time.perf_counter() - started)
        print(json.dumps(edit.__dict__), flush=True)
    return 0


def logged_process(endpoint: str) -> int:
    """Print, as one JSON object, every call the local stack's call log holds from today: CallSid -> the
    outcome stored for each hop (the function behind `failover-did calls`, against the AWS emulation)."""
    from failover_did_cli.env import LOCAL_ENV, use_local_stack_if_set

    os.environ[LOCAL_ENV] = endpoint
    use_local_stack_if_set()
    from datetime import UTC, datetime, timedelta

    from failover_did.store import call_log

    now = datetime.now(UTC)
    records = call_log.all_calls(now - timedelta(days=1), now)
    print(json.dumps({r.call_sid: {str(t.hop): t.outcome for t in r.tiers} for r in records}))
    return 0


def read_call_log(stack: RunningStack) -> dict[str, dict[str, str]]:
    command = [sys.executable, str(Path(__file__).resolve()), "--read-call-log"]
    command += ["--endpoint", stack.env["FAILOVER_DID_LOCAL"]]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=120, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"the call log could not be read: {done.stderr.strip()[-500:]}")
    logged: dict[str, dict[str, str]] = json.loads(done.stdout.strip().splitlines()[-1])
    return logged


def unlogged(calls: list[CallResult], logged: dict[str, dict[str, str]]) -> list[str]:
    """The calls whose log lacks a dial they made, or holds another outcome for it: each Dial action's
    write must land (a write skipped under load would hide a missed call)."""
    missing = []
    for call in calls:
        hops = logged.get(call.sid)
        want = {str(hop): leg.status for hop, leg in enumerate(call.legs, start=1)}
        got = {hop: outcome for hop, outcome in (hops or {}).items() if hop in want}
        if hops is None or got != want:
            missing.append(f"{call.sid} ({call.number}): logged {hops}, dialed {want}")
    return missing


class Editors:
    """Editors running beside the calls; `edits` fills in as they report."""

    def __init__(self, stack: RunningStack, count: int, interval: float, via: str, workdir: Path) -> None:
        self.stack, self.count, self.interval, self.via, self.workdir = stack, count, interval, via, workdir
        self.edits: list[Edit] = []
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._processes: list[subprocess.Popen[str]] = []
        self._stop = threading.Event()
        self._ready = threading.Semaphore(0)

    def _record(self, edit: Edit) -> None:
        with self._lock:
            self.edits.append(edit)

    def applied(self) -> int:
        with self._lock:
            return sum(e.result == "applied" for e in self.edits)

    def start(self, timeout: float = 60) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "stop").unlink(missing_ok=True)
        for editor in range(1, self.count + 1):
            target = self._cli_editor if self.via == "cli" else self._api_editor
            thread = threading.Thread(target=target, args=(editor,), name=f"editor-{editor}", daemon=True)
            thread.start()
            self._threads.append(thread)
        deadline = time.monotonic() + timeout
        for _ in range(self.count):
            if not self._ready.acquire(timeout=max(0.0, deadline - time.monotonic())):
                raise RuntimeError("the editors did not start")
        while self.count and self.applied() == 0:  # the calls start once edits are landing
            if time.monotonic() > deadline:
                raise RuntimeError(f"no edit was applied within {timeout} s: {self.edits[:3]}")
            time.sleep(0.05)

    def _api_editor(self, editor: int) -> None:
        command = [sys.executable, str(Path(__file__).resolve()), "--editor", str(editor)]
        command += ["--endpoint", self.stack.env["FAILOVER_DID_LOCAL"], "--workdir", str(self.workdir)]
        command += ["--edit-interval", str(self.interval)]
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=None, text=True, cwd=ROOT)
        self._processes.append(process)
        stdout: IO[str] | None = process.stdout
        assert stdout is not None
        for line in stdout:
            try:
                message = json.loads(line)
            except ValueError:  # something else printed to stdout: not ours
                continue
            if "ready" in message:
                self._ready.release()
            else:
                self._record(Edit(**message))

    def _cli_editor(self, editor: int) -> None:
        self._ready.release()
        serial = 0
        while not self._stop.is_set():
            next_tick(self.interval)
            serial += 1
            doc = edit_doc(editor, serial)
            path = self.workdir / f"edit-{editor}-{serial}.yaml"
            path.write_text(doc.yaml())
            started = time.perf_counter()
            done = self.stack.cli("rules", "apply", str(path))
            seconds = time.perf_counter() - started
            version: int | None = None
            if done.returncode == 0:
                line = next((x for x in done.stdout.splitlines() if x.startswith(f"~ {EDITED_NUMBER} changed")), "")
                result = "applied" if line else "crashed"
                version = int(line.rsplit("version ", 1)[1].rstrip(")")) if line else None
                detail = line or done.stdout.strip()
            elif "changed by someone else" in done.stderr:
                result, detail = "refused", done.stderr.strip()
            elif "Traceback" in done.stderr:
                result, detail = "crashed", done.stderr.strip()[-1500:]
            else:
                result, detail = "unavailable", done.stderr.strip()[-300:]
            self._record(Edit(editor, serial, doc.say, doc.timeout, result, version, detail, seconds))

    def stop(self) -> None:
        self._stop.set()
        (self.workdir / "stop").write_text("")
        for process in self._processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        for thread in self._threads:
            thread.join(timeout=30)


@dataclass(frozen=True)
class Stored:
    version: int
    timeout: int
    say: str


def read_stored(stack: RunningStack) -> Stored:
    """The edited number's rule as `failover-did rules show` prints it."""
    shown = stack.cli("rules", "show", EDITED_NUMBER)
    if shown.returncode != 0:
        raise RuntimeError(f"rules show failed: {shown.stderr}")
    header = shown.stdout.splitlines()[0]  # "# version N, updated ..."
    rule = yaml.safe_load(shown.stdout)["numbers"][EDITED_NUMBER]
    return Stored(int(header.split()[2].rstrip(",")), int(rule["primary"]["timeout"]), str(rule["final"]["say"]))


@dataclass(frozen=True)
class EditReport:
    applied: int
    refused: int
    unavailable: int  # the command said the table could not be reached (its 1 s timeouts), nothing else
    crashed: int
    initial_version: int
    stored: Stored
    last: Edit | None
    versions_distinct: bool  # no two applied edits claim one version (else one overwrote the other)
    unclaimed_versions: list[int]  # versions that no applied edit claims
    phantom_refusals: int  # of those, the ones no unsure failure explains: written by an edit reported refused
    nothing_lost: bool  # the stored rule is the last applied edit's, and no applied edit overwrote another
    failures: list[str]

    @property
    def failed(self) -> int:
        return self.unavailable + self.crashed


def may_have_written(edit: Edit) -> bool:
    """A failed edit that may still have written: it failed after the scan that precedes every write."""
    return edit.result in ("unavailable", "crashed") and "Failed to scan" not in edit.detail


def judge_edits(edits: list[Edit], initial: Stored, stored: Stored) -> EditReport:
    """Nothing is lost when the stored rule is the applied edit with the highest version (or a later write
    by an edit that failed after writing) and no two applied edits claim one version. A version that no
    applied edit claims and no unsure failure explains was written by an edit reported as refused."""
    applied = sorted((e for e in edits if e.result == "applied"), key=lambda e: e.version or 0)
    claimed = [e.version for e in applied]
    unsure = [e for e in edits if may_have_written(e)]
    unclaimed = sorted(set(range(initial.version + 1, stored.version + 1)) - {v for v in claimed if v is not None})
    last = applied[-1] if applied else None
    content = (stored.timeout, stored.say)
    if last is not None and stored.version == last.version:
        same = content == (last.timeout, last.say)
    elif last is None and stored.version == initial.version:
        same = content == (initial.timeout, initial.say)
    else:  # a later version than any applied edit: it must be one of the unsure failures' content
        newest = last.version or 0 if last is not None else initial.version
        same = stored.version > newest and any(content == (e.timeout, e.say) for e in unsure)
    distinct = len(set(claimed)) == len(claimed) and all(
        v is not None and initial.version < v <= stored.version for v in claimed
    )
    failures = [
        f"editor {e.editor} edit {e.serial} {e.result}: {e.detail}"
        for e in edits
        if e.result in ("unavailable", "crashed")
    ]
    return EditReport(
        applied=len(applied),
        refused=sum(e.result == "refused" for e in edits),
        unavailable=sum(e.result == "unavailable" for e in edits),
        crashed=sum(e.result == "crashed" for e in edits),
        initial_version=initial.version,
        stored=stored,
        last=last,
        versions_distinct=distinct,
        unclaimed_versions=unclaimed,
        phantom_refusals=max(0, len(unclaimed) - len(unsure)),
        nothing_lost=same and distinct,
        failures=failures,
    )


# --- the whole run -----------------------------------------------------------------------------------


@dataclass
class LoadReport:
    calls: list[CallResult]
    seconds: float
    edits: EditReport
    concurrency: int
    editors: int
    edit_via: str
    edit_interval: float
    unlogged: list[str] = field(default_factory=list)  # calls whose log lacks or misstates a dial
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds during the calls, by process kind

    @property
    def requests(self) -> int:
        return sum(c.requests for c in self.calls)

    @property
    def errors(self) -> list[str]:
        return [c.error or f"dialed {c.dialed}, expected {c.expected}" for c in self.bad_calls]

    @property
    def transport_errors(self) -> list[str]:
        """Requests that got no HTTP answer at all (connection reset, refused, timed out)."""
        return [c.error or "" for c in self.calls if c.transport_error]

    @property
    def application_errors(self) -> list[str]:
        """A non-200, wrong TwiML or a wrong dialed sequence."""
        return [e for c, e in zip(self.bad_calls, self.errors, strict=True) if not c.transport_error]

    @property
    def bad_calls(self) -> list[CallResult]:
        return [c for c in self.calls if not c.ok]

    @property
    def latencies_ms(self) -> list[float]:
        return sorted(x for c in self.calls for x in c.latencies_ms)

    @property
    def ok(self) -> bool:
        return not self.errors and not self.unlogged and self.edits.nothing_lost and self.edits.crashed == 0

    def cpu_line(self) -> str:
        stack = [kind for kind in ("emulation", "containers", "command") if kind in self.cpu]
        if not stack or not self.requests:
            return "cpu          not read (no /proc)"
        per = {kind: seconds * 1000 / self.requests for kind, seconds in self.cpu.items()}
        return (
            f"cpu          {sum(per[k] for k in stack):.2f} ms a request in the stack "
            f"({', '.join(f'{k} {per[k]:.2f}' for k in stack)}), {per.get('load generator', 0):.2f} in this load "
            "generator (the editors' processes not counted)"
        )

    def percentile(self, p: float) -> float:
        values = self.latencies_ms
        if not values:
            return 0.0
        return values[min(len(values) - 1, max(0, round(p / 100 * len(values) + 0.5) - 1))]  # nearest rank

    def summary(self) -> str:
        outcomes = Counter(outcome_of(spec_of(c.number), c.legs) for c in self.calls)
        lat = self.latencies_ms
        e = self.edits
        lines = [
            f"calls        {len(self.calls)} at concurrency {self.concurrency} "
            f"({', '.join(f'{n} {k}' for k, n in sorted(outcomes.items()))})",
            f"requests     {self.requests} in {self.seconds:.2f} s = {self.requests / self.seconds:.0f} requests/s, "
            f"{len(self.calls) / self.seconds:.0f} calls/s",
            f"errors       {len(self.errors)}: {len(self.application_errors)} wrong answers (non-200, wrong TwiML or "
            f"sequence), {len(self.transport_errors)} requests with no HTTP answer (connection reset/refused/timeout)",
            f"latency      p50 {self.percentile(50):.1f} ms, p95 {self.percentile(95):.1f} ms, "
            f"p99 {self.percentile(99):.1f} ms, max {max(lat, default=0):.1f} ms "
            f"(mean {statistics.fmean(lat) if lat else 0:.1f} ms, per request, client side)",
            self.cpu_line(),
            f"call log     {len(self.calls) - len(self.unlogged)} of {len(self.calls)} calls logged whole (every dial "
            f"with its outcome)",
            f"rule edits   {e.applied} applied, {e.refused} refused (ConcurrentEdit), {e.unavailable} not applied "
            f"(table unreachable: timed out), {e.crashed} crashed; {self.editors} editors via {self.edit_via} "
            f"every {self.edit_interval:g} s, racing on {EDITED_NUMBER}",
            f"nothing lost {'yes' if e.nothing_lost else 'NO'}: stored version {e.stored.version} "
            f"(timeout {e.stored.timeout}, say {e.stored.say!r}); last applied edit "
            + (f"{e.last.say!r} (version {e.last.version})" if e.last else "none")
            + f"; applied edits claim distinct versions: {'yes' if e.versions_distinct else 'NO'}",
            f"unclaimed    versions {e.initial_version + 1}..{e.stored.version} that no applied edit claims: "
            f"{e.unclaimed_versions or 'none'}; written by an edit reported refused: {e.phantom_refusals}"
            + (
                " (its write landed, its response came after the 1 s timeout, the retry met its own write)"
                if e.phantom_refusals
                else ""
            ),
        ]
        lines += [f"  not logged: {x}" for x in self.unlogged[:10]]
        lines += [f"  error: {x}" for x in self.errors[:10]] + [f"  edit failure: {x}" for x in e.failures[:10]]
        return "\n".join(lines)


def spec_of(number: str) -> NumberSpec:
    return next(spec for spec in UNDER_LOAD if spec.number == number)


@contextmanager
def local_stack(workdir: Path, containers: int | None = None) -> Iterator[RunningStack]:
    """`failover-did local` in its own process, on free loopback ports, with the rules under load."""
    from tests.e2e.conftest import start_local, stop_local

    extra = ("--containers", str(containers)) if containers is not None else ()
    stack = start_local(workdir, *extra, rules=rules_yaml())
    try:
        yield stack
    finally:
        stop_local(stack)


def stack_cpu(root: int) -> dict[str, float]:
    """CPU seconds used so far by `failover-did local` (process `root`) and its processes, by kind, read from
    /proc (Linux): the command itself, its AWS emulation, its webhook containers. Empty where /proc is not."""
    clock = os.sysconf("SC_CLK_TCK")
    children: dict[int, list[int]] = {}
    used: dict[int, tuple[float, str]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # ended meanwhile
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
        used[int(entry.name)] = ((int(fields[11]) + int(fields[12])) / clock, command)
    kinds: dict[str, float] = {}
    pending = [root]
    while pending:
        pid = pending.pop()
        pending += children.get(pid, [])
        if pid in used:
            seconds, command = used[pid]
            kind = "emulation" if "aws_emulation" in command else "containers" if pid != root else "command"
            kinds[kind] = kinds.get(kind, 0.0) + seconds
    return kinds


def run_load(
    stack: RunningStack,
    workdir: Path,
    *,
    calls: int,
    concurrency: int,
    editors: int = 2,
    edit_interval: float = 0.2,
    edit_via: str = "api",
    seed: int = 1,
) -> LoadReport:
    initial = read_stored(stack)
    team = Editors(stack, editors, edit_interval, edit_via, workdir / "edits")
    team.start()
    cpu_before, ours_before = stack_cpu(stack.process.pid), time.process_time()
    try:
        results, seconds = run_calls(stack.simulator(), calls, concurrency, seed)
    finally:
        cpu = {kind: seconds - cpu_before.get(kind, 0.0) for kind, seconds in stack_cpu(stack.process.pid).items()}
        cpu["load generator"] = time.process_time() - ours_before
        team.stop()
    edits = judge_edits(team.edits, initial, read_stored(stack))
    missing = unlogged(results, read_call_log(stack))
    return LoadReport(results, seconds, edits, concurrency, editors, edit_via, edit_interval, missing, cpu)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--calls", type=int, default=1000, help="calls to place (default 1000)")
    parser.add_argument("--concurrency", type=int, default=50, help="calls in flight at once (default 50)")
    parser.add_argument("--editors", type=int, default=2, help="concurrent rule editors (default 2)")
    parser.add_argument("--edit-interval", type=float, default=0.2, help="seconds between edits (default 0.2)")
    parser.add_argument("--edit-via", choices=("api", "cli"), default="api", help="how edits are applied")
    parser.add_argument("--seed", type=int, default=1, help="seed of the calls' outcomes")
    parser.add_argument(
        "--containers", type=int, help="the stack's --containers (default: its own; 0 is one call at a time)"
    )
    parser.add_argument("--editor", type=int, help=argparse.SUPPRESS)  # internal: run as editor N
    parser.add_argument("--endpoint", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--read-call-log", action="store_true", help=argparse.SUPPRESS)  # internal
    args = parser.parse_args(argv)
    if args.read_call_log:
        return logged_process(args.endpoint)
    if args.editor is not None:
        return editor_process(args.editor, args.endpoint, args.workdir, args.edit_interval)
    with tempfile.TemporaryDirectory(prefix="load-local-") as tmp, local_stack(Path(tmp), args.containers) as stack:
        print(
            f"failover-did local on 127.0.0.1:{stack.port} (AWS emulation :{stack.aws_port}); "
            f"{args.calls} calls, {args.concurrency} at a time, seed {args.seed}",
            flush=True,
        )
        report = run_load(
            stack,
            Path(tmp),
            calls=args.calls,
            concurrency=args.concurrency,
            editors=args.editors,
            edit_interval=args.edit_interval,
            edit_via=args.edit_via,
            seed=args.seed,
        )
    print(report.summary())
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
