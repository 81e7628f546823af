"""The package stage writes the run's HTML report beside the bundle (and into it on request)."""

from __future__ import annotations

import zipfile

import pytest

from tunix_core.errors import ConfigError
from tunix_core.plugins import get_host
from tunix_core.protocols import RunContext
from tunix_jax.backend import JaxBackend
from tunix_package.kaggle import KagglePackager


def test_the_report_sits_beside_the_bundle_not_in_it(make_run, options):
    run = make_run()
    run.start_stage("package")
    bundle = KagglePackager().package(run, backend=JaxBackend(), options=options, context=RunContext(get_host()))
    report = run.submission_dir / "report.html"
    html = report.read_text()
    assert html.startswith("<!DOCTYPE html>") and run.run_id in html
    assert "3 fixed (wrong → right), 0 broken" in html  # the fixture's baseline 1/6, final 4/6
    with zipfile.ZipFile(bundle) as archive:
        assert "report.html" not in archive.namelist()
    assert KagglePackager().validate(run.submission_dir, context=RunContext(get_host())) == []


def test_include_report_puts_the_same_page_in_the_zip(make_run, options):
    run = make_run()
    bundle = KagglePackager().package(run, backend=JaxBackend(),
                                      options={**options, "include_report": True}, context=RunContext(get_host()))  # fmt: skip
    with zipfile.ZipFile(bundle) as archive:
        inside = archive.read("report.html")
    assert inside == (run.submission_dir / "report.html").read_bytes()
    assert KagglePackager().validate(bundle, context=RunContext(get_host())) == []  # listed in MANIFEST with its checksum


def test_include_report_must_be_a_boolean(make_run, options):
    run = make_run()
    with pytest.raises(ConfigError, match=r"package.options.include_report: must be true or false, got 'yes'"):
        KagglePackager().package(run, backend=JaxBackend(), options={**options, "include_report": "yes"}, context=RunContext(get_host()))
    assert not (run.submission_dir / "report.html").exists()
