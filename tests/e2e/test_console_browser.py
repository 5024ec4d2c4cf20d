"""The operator console in a real browser (headless Chromium driven by selenium) against `failover-did local`:
sign in, read the statuses, edit a rule (an invalid edit shows the validator's message at its field; a valid
one is saved and the status follows), run a drill, and the attacks: a script planted in a rule never runs, no
page shows data without a session, a viewer has no controls and a forged POST of theirs is refused.

Each page is saved as a screenshot in docs/console/ (the README shows them)."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from failover_did_cli.local_stack import masked
from tests.e2e.conftest import RunningStack, start_local, stop_local

pytestmark = pytest.mark.e2e

SHOTS = Path(__file__).resolve().parents[2] / "docs" / "console"
ADMIN = "admin@localhost"
PASSWORD = "Console-Passw0rd"
STATUS_WORDS = {"Protected", "At risk", "Failing over", "Unprotected"}
PLANTED = (
    "<script>document.title = 'pwned'; window.pwned = 1</script>"
    '<img src="/console/x" onerror="window.pwned = 2; document.body.dataset.pwned = 1">Closed for today.'
)
RULES = f"""
numbers:
  "+14155550100":
    primary: {{target: "sip:frontdesk@pbx.example.com", timeout: 15}}
    failover:
      - {{target: "+14155550111", timeout: 20}}
      - {{target: "sip:oncall@dr.example.net", timeout: 30}}
    triggers: [timeout, busy, failed, "503"]
    final: {{say: "Sorry, nobody can take your call.", voicemail: true}}
  "+14155550200":
    primary: {{target: "sip:sales@pbx.example.com", timeout: 25}}
    failover:
      - {{target: "+14155550222"}}
    triggers: [busy, failed, "5xx"]
  "+14155550400":
    primary: {{target: "sip:desk@pbx.example.com"}}
    failover:
      - {{target: "+14155550444"}}
    final: {{say: {json.dumps(PLANTED)}}}
  "+14155550600":
    primary: {{target: "sip:alone@pbx.example.com", timeout: 20}}
"""

Browser = Callable[[], Any]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    running = start_local(
        tmp_path_factory.mktemp("console"),
        rules=RULES,
        extra_env={"HEALTH_DOWN_AFTER": "1000", "FAILOVER_DID_CONSOLE_PASSWORD": PASSWORD},
    )
    # A missed call for the missed-calls page: every tier busy, then the caller leaves no message.
    call = running.simulator().call("+14155550100", from_="+14155550987")
    call.start()
    for _ in range(3):
        call.dial_ended("busy")
    call.hang_up(40)
    yield running
    stop_local(running)


def console(stack: RunningStack, path: str = "") -> str:
    return f"http://127.0.0.1:{stack.port}/console{path}"


def number_path(number: str) -> str:
    return "/numbers/" + urllib.parse.quote(number, safe="")


def shot(driver: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(SHOTS / f"{name}.png"))


def css(driver: Any, selector: str) -> list[Any]:
    from selenium.webdriver.common.by import By

    return list(driver.find_elements(By.CSS_SELECTOR, selector))


def one(driver: Any, selector: str) -> Any:
    found = css(driver, selector)
    assert len(found) == 1, f"{len(found)} elements match {selector!r} on {driver.current_url}"
    return found[0]


def click_through(driver: Any, element: Any) -> None:
    """Click a link or a form's button and wait until the next page has replaced this one."""
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.wait import WebDriverWait

    page = driver.find_element("css selector", "html")
    element.click()
    WebDriverWait(driver, 60).until(expected_conditions.staleness_of(page))


def sign_in(driver: Any, stack: RunningStack, email: str = ADMIN, password: str = PASSWORD) -> None:
    driver.get(console(stack))
    assert driver.current_url == console(stack, "/login")
    one(driver, "form#login input[name=email]").send_keys(email)
    one(driver, "form#login input[name=password]").send_keys(password)
    click_through(driver, one(driver, "form#login button[type=submit]"))


@pytest.fixture
def admin(open_browser: Browser, stack: RunningStack) -> Any:
    driver = open_browser()
    sign_in(driver, stack)
    assert driver.current_url == console(stack, "/numbers"), driver.page_source[:500]
    return driver


def session_cookies(driver: Any) -> str:
    return "; ".join(f"{c['name']}={c['value']}" for c in driver.get_cookies())


def post(stack: RunningStack, path: str, cookies: str, fields: dict[str, str]) -> int:
    """A POST made outside the browser, with the browser's cookies: what a forged form would send."""
    request = urllib.request.Request(
        console(stack, path),
        data=urllib.parse.urlencode(fields).encode(),
        headers={"Cookie": cookies, "Content-Type": "application/x-www-form-urlencoded"},
        method="POST",
    )

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    try:
        with urllib.request.build_opener(NoRedirect).open(request, timeout=30) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


# --------------------------------------------------------------------------------------------------
# Signing in
# --------------------------------------------------------------------------------------------------


def test_the_banner_names_the_console_and_masks_a_chosen_password(stack: RunningStack) -> None:
    banner = stack.output()
    assert f"Console        {console(stack)}   " in banner
    assert f"Console login  {ADMIN} / {masked(PASSWORD)}   (from FAILOVER_DID_CONSOLE_PASSWORD" in banner
    assert PASSWORD not in banner  # a chosen password is masked like a supplied auth token


def test_sign_in_lands_on_the_numbers_with_a_secure_session(admin: Any, stack: RunningStack) -> None:
    assert {a.text for a in css(admin, "nav a")} >= {"Numbers", "Alerts", "Missed calls"}
    assert ADMIN in admin.page_source
    # Chromium keeps the HttpOnly, Secure, SameSite=Strict cookies that http://127.0.0.1 set
    cookies = {c["name"]: c for c in admin.get_cookies()}
    assert "fd_id" in cookies, cookies
    for cookie in cookies.values():
        assert cookie["secure"] and cookie["httpOnly"] and cookie["sameSite"] == "Strict", cookie
        assert cookie["path"] == "/console", cookie


def test_a_wrong_password_shows_an_error_and_nothing_else(open_browser: Browser, stack: RunningStack) -> None:
    driver = open_browser()
    sign_in(driver, stack, password="Not-The-Passw0rd")
    assert driver.current_url == console(stack, "/login")
    assert one(driver, ".error").text == "Wrong email or password"
    assert not css(driver, "nav") and "+1415" not in driver.page_source
    assert not [c for c in driver.get_cookies() if c["name"] == "fd_id"]
    shot(driver, "login-error")


def test_the_numbers_show_each_status(admin: Any, stack: RunningStack) -> None:
    rows = {row.get_attribute("data-number"): row for row in css(admin, "table#numbers tr[data-number]")}
    assert set(rows) == {"+14155550100", "+14155550200", "+14155550400", "+14155550600"}
    statuses = {number: row.find_element("css selector", "td.status").text for number, row in rows.items()}
    assert set(statuses.values()) <= STATUS_WORDS, statuses
    assert statuses["+14155550600"] == "Unprotected"  # no failover tier
    assert statuses["+14155550100"] == "Protected"
    shot(admin, "numbers")

    click_through(admin, rows["+14155550100"].find_element("css selector", "td.number a"))
    assert admin.current_url == console(stack, number_path("+14155550100"))
    assert one(admin, "#status").text == "Protected"
    assert len(css(admin, "table#tiers tbody tr")) == 3
    shot(admin, "number")


def test_the_filter_keeps_one_status(admin: Any, stack: RunningStack) -> None:
    admin.get(console(stack, "/numbers?status=unprotected"))
    numbers = [row.get_attribute("data-number") for row in css(admin, "table#numbers tr[data-number]")]
    assert numbers == ["+14155550600"]


# --------------------------------------------------------------------------------------------------
# Editing
# --------------------------------------------------------------------------------------------------


def field(driver: Any, name: str) -> Any:
    return one(driver, f'[data-field="{name}"] [name="{name}"]')


def test_an_invalid_edit_shows_the_validators_message_at_the_field(admin: Any, stack: RunningStack) -> None:
    admin.get(console(stack, number_path("+14155550200") + "/edit"))
    timeout = field(admin, "primary_timeout")
    timeout.clear()
    timeout.send_keys("2")
    click_through(admin, css(admin, "form#rule button[value=save]")[0])  # Save sits at the top and the foot
    message = one(admin, '[data-field="primary_timeout"] .field-error').text
    assert "2" in message and "5" in message, message  # names the value and the allowed range
    assert css(admin, ".error")  # "not saved" at the top
    shot(admin, "edit-error")
    admin.get(console(stack, number_path("+14155550200")))
    assert css(admin, "table#tiers tbody tr td")[2].text == "25"  # nothing was saved


def test_a_valid_edit_is_saved_and_the_status_follows(admin: Any, stack: RunningStack) -> None:
    number = "+14155550600"
    admin.get(console(stack, number_path(number)))
    assert one(admin, "#status").text == "Unprotected"
    click_through(admin, one(admin, "a#edit"))
    click_through(admin, one(admin, "form#rule button[value=add_tier]"))
    field(admin, "tier_target_1").send_keys("+14155550666")
    timeout = field(admin, "primary_timeout")
    timeout.clear()
    timeout.send_keys("18")
    click_through(admin, css(admin, "form#rule button[value=save]")[0])  # Save sits at the top and the foot
    assert admin.current_url.startswith(console(stack, number_path(number)))  # the number's page, fresh
    assert one(admin, "#status").text in STATUS_WORDS - {"Unprotected"}
    tiers = [row.find_elements("css selector", "td") for row in css(admin, "table#tiers tbody tr")]
    assert [cells[1].text for cells in tiers] == ["sip:alone@pbx.example.com", "+14155550666"]
    assert tiers[0][2].text == "18"
    # the CLI reads the same store: the rule is there, at its new version
    shown = stack.cli("rules", "show", number)
    assert shown.returncode == 0 and "+14155550666" in shown.stdout, shown.stdout + shown.stderr


# --------------------------------------------------------------------------------------------------
# Drill, alerts, missed calls
# --------------------------------------------------------------------------------------------------


def test_a_drill_shows_its_table(admin: Any, stack: RunningStack) -> None:
    admin.get(console(stack, number_path("+14155550100")))
    click_through(admin, one(admin, "form#drill button[type=submit]"))
    rows = css(admin, "table#drill tbody tr")
    results = [row.find_element("css selector", "td.result").text for row in rows]
    assert len(results) >= 4 and results == ["PASS"] * len(results), admin.find_element("css selector", "main").text
    shot(admin, "drill")


def test_alerts_and_missed_calls(admin: Any, stack: RunningStack) -> None:
    click_through(admin, one(admin, "nav a[href='/console/missed']"))
    text = admin.find_element("css selector", "main").text
    assert "+14155550987" in text  # the caller of the missed call
    shot(admin, "missed")
    click_through(admin, one(admin, "nav a[href='/console/alerts']"))
    assert "+14155550100" in admin.find_element("css selector", "main").text
    shot(admin, "alerts")


# --------------------------------------------------------------------------------------------------
# Attacks
# --------------------------------------------------------------------------------------------------


def test_a_script_planted_in_a_rule_never_runs_and_shows_as_text(admin: Any, stack: RunningStack) -> None:
    for path in (number_path("+14155550400"), number_path("+14155550400") + "/edit"):
        admin.get(console(stack, path))
        assert admin.title != "pwned" and "failover-did" in admin.title
        assert admin.execute_script("return window.pwned === undefined && !document.body.dataset.pwned")
        assert not css(admin, "main script") and not css(admin, "main img")
    admin.get(console(stack, number_path("+14155550400")))
    assert "<script>document.title = 'pwned'" in one(admin, "dd.final-say").text  # shown as the text it is


@pytest.mark.parametrize(
    "path",
    ["/numbers", number_path("+14155550100"), number_path("+14155550100") + "/edit", "/alerts", "/missed"],
)
def test_no_page_shows_data_without_a_session(open_browser: Browser, stack: RunningStack, path: str) -> None:
    driver = open_browser()
    driver.get(console(stack, path))
    assert driver.current_url == console(stack, "/login")
    assert "+1415" not in driver.page_source and not css(driver, "nav")


def test_logout_ends_the_session(admin: Any, stack: RunningStack) -> None:
    click_through(admin, one(admin, "form#logout button"))
    assert admin.current_url == console(stack, "/login")
    admin.get(console(stack, "/numbers"))
    assert admin.current_url == console(stack, "/login")


def test_a_viewer_reads_but_cannot_edit(open_browser: Browser, stack: RunningStack) -> None:
    added = stack.cli("console", "add-user", "viewer@example.com", "--viewer")
    assert added.returncode == 0, added.stdout + added.stderr
    (temporary,) = re.findall(r"temporary password: (\S+)", added.stdout)

    driver = open_browser()
    sign_in(driver, stack, "viewer@example.com", temporary)
    # the first sign-in asks for a password of their own (Cognito's new-password challenge)
    one(driver, "form#new-password input[name=new_password]").send_keys("Viewer-Passw0rd")
    one(driver, "form#new-password input[name=confirm]").send_keys("Viewer-Passw0rd")
    click_through(driver, one(driver, "form#new-password button[type=submit]"))
    assert driver.current_url == console(stack, "/numbers"), driver.page_source[:500]
    assert css(driver, "table#numbers tr[data-number]")
    assert "Add a number" not in driver.page_source

    driver.get(console(stack, number_path("+14155550200")))
    assert one(driver, "#status").text in STATUS_WORDS
    assert not css(driver, "a#edit") and not css(driver, "form#drill") and not css(driver, "form#delete")

    # a forged POST with the viewer's own session and a valid CSRF token is still refused
    csrf = one(driver, "form#logout input[name=csrf]").get_attribute("value")
    cookies = session_cookies(driver)
    number = number_path("+14155550200")
    assert post(stack, number + "/drill", cookies, {"csrf": csrf}) == 403
    assert post(stack, number + "/edit", cookies, {"csrf": csrf, "primary_target": "+14155550999"}) == 403
    assert post(stack, number + "/delete", cookies, {"csrf": csrf}) == 403
    shown = stack.cli("rules", "show", "+14155550200")
    assert "sip:sales@pbx.example.com" in shown.stdout  # unchanged
