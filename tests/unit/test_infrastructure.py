"""The Terraform parses (python-hcl2) and every variable it uses is declared, with the boot script's
template variables all supplied. No cloud is reached from tests."""

from __future__ import annotations

import re

import hcl2

from tests.conftest import REPO

AWS = REPO / "infrastructure" / "aws"


def load(name: str) -> dict:
    with open(AWS / name) as f:
        return hcl2.load(f)


def test_terraform_parses_and_variables_are_declared():
    declared = {next(iter(v)).strip('"') for v in load("variables.tf")["variable"]}
    main = (AWS / "main.tf").read_text() + (AWS / "outputs.tf").read_text()
    load("main.tf"), load("outputs.tf")
    used = set(re.findall(r"\bvar\.(\w+)", main))
    assert used and used <= declared, f"undeclared: {used - declared}"


def test_boot_script_gets_every_template_variable():
    template = (REPO / "infrastructure" / "cloud-init.sh.tftpl").read_text()
    wanted = set(re.findall(r"\$\{(\w+)\}", template))
    call = re.search(r"templatefile\([^,]+,\s*\{(.*?)\}\)", (AWS / "main.tf").read_text(), re.S).group(1)
    supplied = set(re.findall(r"^\s*(\w+)\s*=", call, re.M))
    assert wanted == supplied
    assert "run_pipeline.py ${run_args}" in template
