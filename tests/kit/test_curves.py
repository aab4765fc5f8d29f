"""Training curves: the training tests record the student's history beside the reference's,
trained by the grader from the same starting point on the same data (never by running the
reference in the student's worker); report.html draws them, and the class page shows the spread
of the final accuracies."""

from __future__ import annotations

import copy
import json
import math
import subprocess
import sys
from types import SimpleNamespace

import pytest

from grader import plugin
from grader.instructor.class_report import class_page
from grader.report.schema import Report
from tests.kit.test_schema import validate
from tests.kit.variants import KIT_ROOT

pytestmark = pytest.mark.heavy(20)  # rough seconds; see tests/kit/conftest.py


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The reference's MNIST training tests of mlp and gpu_training, graded."""
    out = tmp_path_factory.mktemp("curves")
    run = subprocess.run([sys.executable, "-m", "grader", "grade", "solutions", "--topics",
                          "mlp,gpu_training", "--suite", "hidden", "-k", "learns_mnist",
                          "--out", str(out)], cwd=KIT_ROOT, capture_output=True, text=True,
                         timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    return out, json.loads((out / "report.json").read_text())


def test_each_training_test_records_its_curve_beside_the_reference(trained):
    _, report = trained
    validate(report, Report)
    curves = {t["name"]: t["curve"] for topic in report["topics"] for t in topic["tests"]}
    assert sorted(curves) == ["test_train_gpu_learns_mnist", "test_train_mlp_learns_mnist"]
    for curve in curves.values():
        assert curve["x"] == [1, 2] and curve["x_label"] == "epoch"
        names = [s["name"] for s in curve["series"]]
        assert names == ["test accuracy", "training loss", "training accuracy"]
        for series in curve["series"]:
            assert len(series["yours"]) == len(series["reference"]) == 2
            # the reference solution takes the reference's steps: the same curve, up to rounding
            assert series["yours"] == pytest.approx(series["reference"], rel=1e-3, abs=1e-3)
        loss = curve["series"][1]["reference"]
        assert loss[1] < loss[0]


def test_report_html_draws_each_curve(trained):
    out, _ = trained
    page = (out / "report.html").read_text()
    assert page.count('<figure class="curves"><svg') == 2
    assert "test accuracy" in page and "training loss" in page


def test_the_class_page_shows_the_spread_of_final_accuracies(trained):
    _, report = trained
    other = copy.deepcopy(report)
    for topic in other["topics"]:
        for test in topic["tests"]:
            test["curve"]["series"][0]["yours"][-1] = 0.5
    page = class_page({"a": report, "b": other}, "class")
    assert "Training curves: final values" in page
    assert page.count("data:image/png;base64,") == 2  # the histograms and the spread


def test_record_curve_keeps_finite_numbers_only(monkeypatch):
    running = SimpleNamespace(curve=None)
    monkeypatch.setattr(plugin, "_running", running)
    plugin.record_curve("t", "epoch", [1, 2, 3],
                        [("acc", [0.5, math.nan, True], [0.25, math.inf, "x"])] * 9)
    assert running.curve["series"][0] == {"name": "acc", "yours": [0.5, None, None],
                                          "reference": [0.25, None, None]}
    assert len(running.curve["series"]) == plugin.MAX_CURVE_SERIES
    json.dumps(running.curve, allow_nan=False)
    monkeypatch.setattr(plugin, "_running", None)
    plugin.record_curve("t", "epoch", [1], [])  # outside a grading run: nothing, no error
