"""The sweep you can look at: sweep.html (self-contained, opened from disk) and `python -m autotrain_hydra.dashboard`
(optuna-dashboard on localhost), each loaded in a real headless Chromium: no console error, the trial count and the
best value shown; a screenshot of each is kept (test-artifacts/, or $AUTOTRAIN_HYDRA_ARTIFACTS)."""

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import optuna
import pytest

from autotrain_hydra import dashboard
from autotrain_hydra.errors import InputError
from autotrain_hydra.features.sweep import write_report

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
needs_browser = pytest.mark.skipif(
    not (CHROMIUM and DRIVER) and not os.environ.get("CI"),  # CI (.ci/run) installs them: there it must run
    reason="Chromium and ChromeDriver are not installed (apt-get install chromium chromium-driver)")


def artifacts() -> Path:
    path = Path(os.environ.get("AUTOTRAIN_HYDRA_ARTIFACTS") or ROOT / "test-artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1600",
                "--enable-unsafe-swiftshader"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def errors(driver):
    return [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]


@pytest.fixture
def study_dir(tmp_path):
    """A sweep dir with a small study of 5 trials (4 complete, 1 pruned), its trial dirs, and the report."""
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    study = optuna.create_study(study_name="sft-sweep", storage=url, direction="minimize")
    for i, lr in enumerate([1e-3, 3e-3, 1e-2, 3e-4]):
        trial = study.ask({"training.lr": optuna.distributions.LogUniformDistribution(1e-5, 1e-1),
                           "training.warmup_ratio": optuna.distributions.UniformDistribution(0, 0.2)})
        (tmp_path / str(trial.number)).mkdir()
        study.tell(trial, 4.0 - i * 0.25)
    pruned = study.ask()
    pruned.report(6.5, 4)
    (tmp_path / str(pruned.number)).mkdir()
    study.tell(pruned, state=optuna.trial.TrialState.PRUNED)
    write_report(str(tmp_path), study, url, "eval_loss", "minimize", final=False)
    return tmp_path


@pytest.mark.slow
@needs_browser
def test_the_sweep_page_opens_from_disk_with_the_study(study_dir, browser):
    page = study_dir / "sweep.html"
    import re

    fetched = re.findall(r"<(?:script|link|img|iframe)\b[^>]*\b(?:src|href)=", page.read_text())
    assert fetched == []  # plotly's script is inlined: nothing is fetched, the page opens offline
    browser.get(page.as_uri())
    time.sleep(1)
    assert errors(browser) == []
    assert browser.find_element("id", "n-trials").text == "5"
    assert browser.find_element("id", "best-value").text == "3.25"
    assert len(browser.find_elements("css selector", ".plotly-graph-div")) == 4  # history, importances, coords, slice
    rows = browser.find_elements("css selector", "#trials tbody tr")
    assert [r.find_elements("tag name", "td")[1].text for r in rows] == ["COMPLETE"] * 4 + ["PRUNED"]
    assert rows[3].get_attribute("class") == "best" and rows[4].find_elements("tag name", "td")[5].text == "4"
    assert rows[0].find_element("tag name", "a").get_attribute("href").endswith("/0/")
    browser.save_screenshot(str(artifacts() / "sweep_page.png"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@needs_browser
def test_the_dashboard_serves_the_study_on_localhost(study_dir, browser):
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "autotrain_hydra.dashboard", str(study_dir), "--port",
                               str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=2)
                break
            except OSError:
                assert server.poll() is None, server.stdout.read()
                time.sleep(0.3)
        browser.get(f"http://127.0.0.1:{port}/dashboard/studies/1")
        deadline, text = time.time() + 30, ""
        while time.time() < deadline and "3.25" not in text:
            time.sleep(0.5)
            text = browser.find_element("tag name", "body").text
        assert "sft-sweep" in text and "3.25" in text, text[:2000]  # the study and its best value
        browser.get(f"http://127.0.0.1:{port}/dashboard/studies/1/trials")
        deadline = time.time() + 30
        while time.time() < deadline and "Pruned" not in browser.find_element("tag name", "body").text:
            time.sleep(0.5)
        text = browser.find_element("tag name", "body").text
        assert "5 Trials" in text and "Trial 4" in text and "Pruned" in text, text[:2000]  # the trial count
        assert errors(browser) == []
        browser.save_screenshot(str(artifacts() / "dashboard.png"))
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_the_dashboard_names_what_it_cannot_serve(tmp_path):
    with pytest.raises(InputError, match="holds no optuna.db"):
        dashboard.storage_url(str(tmp_path))
    with pytest.raises(InputError, match="neither a sweep dir nor a storage URL"):
        dashboard.storage_url(str(tmp_path / "nope"))
    optuna.create_study(storage=f"sqlite:///{tmp_path / 'optuna.db'}", study_name="s")
    assert dashboard.storage_url(str(tmp_path)) == f"sqlite:///{tmp_path / 'optuna.db'}"
    assert dashboard.studies(dashboard.storage_url(str(tmp_path))) == ["s"]
    code = dashboard.main([str(tmp_path / "nope")])
    assert code == 2


def test_the_summary_counts_the_trials_of_the_budget_and_says_which_run(tmp_path):
    from autotrain_hydra.features.sweep_page import render

    study = optuna.create_study()
    study.add_trial(optuna.trial.create_trial(value=1.0, params={}, distributions={}))
    rows = [{"number": 0, "state": "COMPLETE", "value": 1.0, "counted": True},
            {"number": 1, "state": "RUNNING", "value": None, "counted": True},
            {"number": 2, "state": "FAIL", "value": None, "counted": False, "lost": True},
            {"number": 3, "state": "RUNNING", "value": None, "counted": True}]
    result = {"metric": "eval_loss", "study_name": "s", "storage": "in memory", "direction": "minimize",
              "n_trials": 3, "n_complete": 1, "n_pruned": 0, "n_failed": 0, "n_lost": 1, "best_value": 1.0,
              "best_trial": 0}
    page = render(study, rows, result, str(tmp_path), live=True)
    assert ('<span id="n-trials">3</span> trials (1 complete, 0 pruned, 0 failed, 2 running; 1 lost with their '
            'worker)') in page
