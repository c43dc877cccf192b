"""The web app in a real browser (headless chromium through Selenium), as a peer worker uses it:
sign in with the second factor, see the new referral, accept, contact and complete it; the clinic's
peer worker sees it move; a wrong code and another partner get nothing. axe-core checks every page
(no serious or critical violation), and each page is photographed for the docs when asked
(WRAPAROUND_SCREENSHOTS=docs/screenshots)."""

from __future__ import annotations

from pathlib import Path

from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

from tests.support.live import LiveServer
from tests.web._browser import screenshot, serious_violations
from tests.web._web_world import PASSWORD, Person, World


class Pages:
    def __init__(self, driver: WebDriver, base: str, axe: str, shots: Path | None) -> None:
        self.driver, self.base, self.axe, self.shots = driver, base, axe, shots

    def wait_for(self, text: str) -> None:
        # A form post replaces the document while this polls: reading the old body's text can then fail
        # with a stale element or, in chromium 156, "Node with given id does not belong to the document"
        # (a WebDriverException). Either means "not yet": poll again, up to the timeout.
        WebDriverWait(
            self.driver, 30, ignored_exceptions=(StaleElementReferenceException, WebDriverException)
        ).until(EC.text_to_be_present_in_element((By.TAG_NAME, "body"), text))

    def check(self, name: str) -> None:
        """Accessibility first (the page as it is), then the picture."""
        assert serious_violations(self.driver, self.axe) == [], name
        screenshot(self.driver, self.shots, name)

    def sign_in(self, person: Person, code: str | None = None) -> None:
        self.driver.get(f"{self.base}/app/login")
        self.driver.find_element(By.ID, "email").send_keys(person.email)
        self.driver.find_element(By.ID, "password").send_keys(PASSWORD)
        self.driver.find_element(By.ID, "code").send_keys(code or person.code())
        self.driver.find_element(By.CSS_SELECTOR, "form.form button[type=submit]").click()

    def press(self, label: str) -> None:
        self.driver.find_element(By.XPATH, f"//button[normalize-space()='{label}']").click()

    def sign_out(self) -> None:
        self.press("Sign out")
        self.wait_for("Sign in")


def test_a_partner_works_a_referral_and_the_clinic_sees_it_move(
    browser: WebDriver, server: LiveServer, world: World, axe: str, screenshots: Path | None
) -> None:
    pages = Pages(browser, server.base_url, axe, screenshots)
    clinic_worker = world.clinic_worker()
    partner_worker = world.partner_worker()
    task = world.refer()

    browser.get(f"{server.base_url}/app/login")
    pages.check("login")
    pages.sign_in(partner_worker)
    pages.wait_for("Referrals to your organisation")
    assert "Ada Okafor" in browser.page_source
    pages.check("partner-inbox")

    browser.find_element(By.LINK_TEXT, "Ada Okafor").click()
    pages.wait_for("How to contact them")
    assert "07700 900123" in browser.page_source
    pages.check("partner-referral-new")
    pages.press("Accept referral")
    pages.wait_for("Referral accepted.")
    pages.press("Record contact made")
    pages.wait_for("Contact with the person recorded.")
    browser.find_element(By.ID, "outcome").send_keys("Housing officer appointment booked and kept")
    pages.press("Complete referral")
    pages.wait_for("Referral completed.")
    pages.check("partner-referral-completed")
    pages.sign_out()

    pages.sign_in(clinic_worker)
    pages.wait_for("Your clinic's referrals")
    row = browser.find_element(By.XPATH, "//tbody[@id='rows']/tr[td/a[normalize-space()='Ada Okafor']]")
    assert "Completed" in row.text
    assert "Positive PHQ-4 screen" in browser.page_source
    pages.check("clinic-tracker")
    browser.find_element(By.LINK_TEXT, "Ada Okafor").click()
    pages.wait_for("Timeline")
    assert "Housing officer appointment booked and kept" in browser.page_source
    pages.check("clinic-referral-timeline")

    # A new referral shows up on the clinic's list after a refresh (the page also refreshes itself).
    world.refer(family="Mensah", given="Kwame")
    browser.get(f"{server.base_url}/app/")
    pages.wait_for("Kwame Mensah")
    assert task["id"]


def test_a_wrong_one_time_code_is_refused(
    browser: WebDriver, server: LiveServer, world: World, axe: str, screenshots: Path | None
) -> None:
    pages = Pages(browser, server.base_url, axe, screenshots)
    person = world.partner_worker()
    wrong = f"{(int(person.code()) + 500_000) % 1_000_000:06d}"
    pages.sign_in(person, code=wrong)
    pages.wait_for("There is a problem")
    assert "password or one-time code is not right" in browser.page_source
    assert browser.current_url.endswith("/app/login")
    pages.check("login-refused")
    browser.get(f"{server.base_url}/app/")
    pages.wait_for("Sign in")  # still signed out


def test_another_partner_sees_nothing(
    browser: WebDriver, server: LiveServer, world: World, axe: str, screenshots: Path | None
) -> None:
    pages = Pages(browser, server.base_url, axe, screenshots)
    task = world.refer()
    pages.sign_in(world.other_partner_worker())
    pages.wait_for("Referrals to your organisation")
    assert "No referrals." in browser.page_source
    assert "Ada Okafor" not in browser.page_source
    browser.get(f"{server.base_url}/app/referrals/{task['id']}")
    pages.wait_for("Page not found")
    assert "Ada Okafor" not in browser.page_source
    pages.check("not-found")
