"""End to end in a real headless Chromium (Playwright): start `streamlit run dashboard/app.py`, load the
page, advance the live stream, check that the chart's last forecast point changed, save a screenshot;
and upload a bad file through the browser's file picker.

Chromium comes from the system (`apt-get install -y chromium`, done by .ci/run): Playwright cannot
download its own browser on these machines.
"""

from __future__ import annotations

import ipaddress
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
from dashboard_fixtures import REPO, START, trained_workspace
from playwright.sync_api import sync_playwright

CHROMIUM = os.environ.get("LRUTS_CHROMIUM", "/usr/bin/chromium")
STARTUP = 180  # seconds: the server imports torch and mlflow and loads the model on a busy 2-core VM
WAIT_MS = 120_000

# the forecast trace of the last panel of the first plotly chart on the page: (time, value) of its last point
LAST_FORECAST_POINT = """() => {
  const gd = document.querySelector('[data-testid="stPlotlyChart"] .js-plotly-plot');
  if (!gd || !gd._fullData) return null;
  const traces = gd._fullData.filter(t => t.meta === 'forecast');
  if (!traces.length) return null;
  const t = traces[traces.length - 1];
  return [String(t.x[t.x.length - 1]), Number(t.y[t.y.length - 1])];
}"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The dashboard served by a real Streamlit process on a free local port."""
    ws = trained_workspace(tmp_path_factory.mktemp("dashboard"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tmp_path_factory.mktemp("streamlit") / "server.log"
    env = {**os.environ, **ws.env, "MLFLOW_DISABLE_TELEMETRY": "true"}
    cmd = [sys.executable, "-m", "streamlit", "run", "dashboard/app.py", "--server.port", str(port)]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_healthy(port, proc, log)
        yield f"http://127.0.0.1:{port}", ws
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _wait_healthy(port: int, proc: subprocess.Popen, log) -> None:
    deadline = time.monotonic() + STARTUP
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"streamlit exited with {proc.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
                if r.read() == b"ok":
                    return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"streamlit did not answer on port {port} within {STARTUP} s:\n{log.read_text()}")


@pytest.fixture
def page(server):
    url, _ = server
    assert os.path.exists(CHROMIUM), f"{CHROMIUM} is missing: apt-get install -y chromium (see .ci/run)"
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--headless=new", "--disable-gpu", "--disable-dev-shm-usage"],
        )
        try:
            pg = browser.new_page(viewport={"width": 1400, "height": 1100})
            pg.set_default_timeout(WAIT_MS)
            pg.goto(url)
            yield pg
        finally:
            browser.close()


def _last_point(page) -> list:
    page.wait_for_function(f"({LAST_FORECAST_POINT})() !== null", timeout=WAIT_MS)
    return page.evaluate(LAST_FORECAST_POINT)


def test_browser_streams_observations_and_the_chart_forecast_moves(server, page, tmp_path):
    _, ws = server
    first = _last_point(page)
    step = ws.frame["date"].iloc[1] - ws.frame["date"].iloc[0]
    last_history = ws.frame["date"].iloc[START - 1]
    assert pd.Timestamp(first[0]) == last_history + 12 * step  # the horizon's end, 12 steps after the history

    page.get_by_role("button", name="Next observation").click()
    page.wait_for_function(f"(p => {{ const q = ({LAST_FORECAST_POINT})(); return q && q[0] !== p[0]; }})", arg=first)
    second = _last_point(page)
    assert second[1] != first[1]  # the last forecast point changed
    assert pd.Timestamp(second[0]) == last_history + 13 * step  # and moved one step on

    page.get_by_role("button", name="Replay burst").click()  # 12 more observations at once
    page.wait_for_function(f"(p => {{ const q = ({LAST_FORECAST_POINT})(); return q && q[0] !== p[0]; }})", arg=second)
    third = _last_point(page)
    assert pd.Timestamp(third[0]) == last_history + 25 * step and third[1] != second[1]
    page.get_by_text("Median over 13 observation(s)").wait_for()

    shot = tmp_path / "dashboard.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
    print(f"screenshot: {shot}")


def test_browser_upload_of_a_bad_file_shows_the_error(server, page, tmp_path):
    _, ws = server
    _last_point(page)
    bad = tmp_path / "rows.csv"
    ws.frame.iloc[START : START + 2].drop(columns="s1").to_csv(bad, index=False)
    page.get_by_text("Add your own observations").click()
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(bad))
    add = page.get_by_role("button", name="Add uploaded rows")
    page.wait_for_function("b => !b.disabled", arg=add.element_handle())
    add.click()
    alert = page.get_by_text("Rows rejected, the stream is unchanged.")
    alert.wait_for()
    assert "no numeric column(s) ['s1']" in alert.inner_text()


def test_server_listens_on_localhost_only_and_sends_no_usage_statistics(server):
    import tomllib

    url, _ = server
    port = int(url.rsplit(":", 1)[1])
    config = tomllib.loads((REPO / ".streamlit" / "config.toml").read_text())
    assert config["browser"]["gatherUsageStats"] is False
    assert config["server"]["address"] == "127.0.0.1"
    # the server was started without --server.address: the committed config decides where it listens
    assert _listening(port) == {"127.0.0.1"}


def _listening(port: int) -> set[str]:
    """Addresses a TCP socket listens on at `port`, from the kernel's tables (Linux)."""
    found = set()
    for table, width in (("/proc/net/tcp", 4), ("/proc/net/tcp6", 16)):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            addr, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                raw = bytes.fromhex(addr)
                # /proc prints each 32-bit word in host (little-endian) order
                words = b"".join(raw[i : i + 4][::-1] for i in range(0, width, 4))
                found.add(str(ipaddress.ip_address(words)))
    return found
