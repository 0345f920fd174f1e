"""The demo in a real headless browser (Debian chromium driven by Playwright): generate, swap, verdicts,
the N-seed comparison, the known-sound check, rate, results."""
from __future__ import annotations

import os
import re
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from required import chromium

APP = Path(__file__).resolve().parent.parent / "demo" / "app.py"
# Closed network: without these, chromium keeps trying (and failing) to reach Google's services.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
                 "--disable-background-networking", "--disable-component-update"]

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The app on the shipped checkpoints with quick settings and a 2-clip rating set."""
    folder = tmp_path_factory.mktemp("demo")
    config = folder / "demo.yaml"
    config.write_text("demo:\n  seconds: 1.0\n  steps: 2\n  rating_set: null\n  rating_prompts: [bell and then beep]\n")
    port = free_port()
    log = open(folder / "app.log", "w")
    process = subprocess.Popen([sys.executable, str(APP), "--config", str(config), "--db", str(folder / "r.sqlite"),
                                "--port", str(port)], stdout=log, stderr=subprocess.STDOUT,
                               env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 240
    while time.time() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the app exited: {(folder / 'app.log').read_text()[-2000:]}")
        try:
            urllib.request.urlopen(url, timeout=2)
            break
        except OSError:
            time.sleep(0.5)
    else:
        pytest.fail("the app did not start in 240 s")
    yield url, folder / "r.sqlite"
    process.terminate()
    process.wait(timeout=30)
    log.close()


@pytest.fixture(scope="module")
def page(server):
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=60_000)  # a generation on a busy 2-core machine takes seconds

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium(), headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.set_default_timeout(60_000)
        page.goto(server[0])
        yield page
        browser.close()


def listening_addresses(port: int) -> set[str]:
    """The local addresses of this machine's listening TCP sockets on `port` (Linux /proc/net/tcp and tcp6)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                raw = bytes.fromhex(address)
                if len(raw) == 4:
                    found.add(socket.inet_ntop(socket.AF_INET, raw[::-1]))
                else:  # four little-endian 32-bit words
                    words = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))
                    found.add(socket.inet_ntop(socket.AF_INET6, words))
    return found


def test_the_app_binds_localhost_only(server):
    """Whatever interfaces this machine has, the app listens on the loopback address and nowhere else."""
    port = int(server[0].rstrip("/").rsplit(":", 1)[1])
    assert listening_addresses(port) == {"127.0.0.1"}


def test_only_generation_is_an_api_endpoint(server):
    """Ratings go through the page only: a script must not be able to fill the database."""
    import json

    with urllib.request.urlopen(server[0] + "gradio_api/info", timeout=10) as response:
        info = json.load(response)
    assert set(info["named_endpoints"]) == {"/compare"} and not info["unnamed_endpoints"]


def test_swap_generate_rate_and_see_the_rating_counted(page, server):
    from playwright.sync_api import expect

    prompt = page.locator("#prompt textarea")
    prompt.fill("x" * 201)
    page.click("#generate")
    expect(page.get_by_text("201 characters; the limit is 200").first).to_be_visible()

    prompt.fill("bell and then beep")
    page.click("#swap")
    expect(prompt).to_have_value("beep and then bell")
    page.click("#generate")  # the app kept serving after the refused prompt
    verdict = re.compile(r"(in order: |wrong order: |events overlap: |not detected).*detected events", re.DOTALL)
    for index in (0, 1):
        expect(page.locator(f"#spectrogram-{index} img")).to_be_visible()
        expect(page.locator(f"#events-{index}")).to_have_text(verdict)

    expect(page.locator("#known-sounds")).to_contain_text("know only these sounds: beep, bell")
    prompt.fill("a dog barks")
    page.click("#generate")
    expect(page.get_by_text("names none of the sounds this demo's models know").first).to_be_visible()

    prompt.fill("bell and then beep")
    page.locator("#n-seeds input[type=number]").fill("2")
    page.locator("#n-seeds input[type=number]").press("Enter")
    page.click("#compare-seeds")
    for index in (0, 1):
        expect(page.locator(f"#tally-{index}")).to_have_text(re.compile(r"\d of 2 in order; \d wrong order"))
        expect(page.locator(f"#gallery-{index} img")).to_have_count(2)
    expect(page.locator("#seeds-time")).to_contain_text("2 seeds x 2 pipelines in")
    chosen = page.locator("#seed-audio-1 audio")
    expect(chosen).to_have_count(0)
    page.locator("#gallery-1 img").nth(1).click()
    expect(chosen.first).to_be_attached()  # the chosen clip is loaded in the player

    page.get_by_role("tab", name="Rate").click()
    page.locator("#rater input").fill("browser-rater")
    page.click("#start")
    expect(page.locator("#progress")).to_contain_text("Clip 1 of 2")
    expect(page.locator("#rate-prompt")).to_contain_text("bell and then beep")
    page.locator("#mos-r").get_by_text("4", exact=True).click()
    page.locator("#mos-t").get_by_text("5", exact=True).click()
    page.click("#submit")
    expect(page.locator("#progress")).to_contain_text("Clip 2 of 2")

    page.get_by_role("tab", name="Results").click()
    page.click("#refresh")
    expect(page.locator("#results")).to_contain_text("Ratings in all: 1.")
    expect(page.locator("#mos-chart img")).to_be_visible()
    rows = sqlite3.connect(server[1]).execute("SELECT rater, mos_r, mos_t FROM ratings").fetchall()
    assert rows == [("browser-rater", 4, 5)]
