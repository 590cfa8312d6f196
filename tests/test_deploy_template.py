"""Checks of the SAM template in deploy/ and of the Lambda package that deploy/build.sh builds.

Everything runs offline: cfn-lint validates the template against the schemas it ships, and the
build script writes only under pytest's tmp_path. No test contacts AWS.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
TEMPLATE_PATH = REPO_ROOT / "deploy" / "template.yaml"
BUILD_SCRIPT = REPO_ROOT / "deploy" / "build.sh"
DEPLOY_DOC = REPO_ROOT / "docs" / "deploy.md"

FUNCTIONS = ("TimerFunction", "RecursiveFunction")

# Environment variables the handlers in sim/drain/handlers.py read.
COMMON_VARIABLES = {
    "DRAIN_QUEUE_URL",
    "DRAIN_TOPIC_ARN",
    "DRAIN_BATCH_SIZE",
    "DRAIN_WAIT_S",
    "DRAIN_VISIBILITY_TIMEOUT_S",
    "DRAIN_SAFETY_MARGIN_S",
    "DRAIN_PUBLISH_API",
    "DRAIN_DELETE_API",
}
TIMER_ONLY_VARIABLES = {"DRAIN_BASELINE_S", "DRAIN_BASELINE_CLOCK"}

QUEUE_ARN = {"Fn::GetAtt": ["DelayQueue", "Arn"]}
TOPIC_ARN = {"Ref": "Topic"}
DRAIN_ACTIONS = ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility")
# Keys a policy statement may use. NotAction and NotResource are left out because they allow
# everything they do not list.
STATEMENT_KEYS = {"Sid", "Effect", "Action", "Resource", "Condition"}

# Top-level modules a packaged file may import besides sim: the standard library, and boto3 and
# botocore, which the Lambda Python runtime includes.
RUNTIME_MODULES = set(sys.stdlib_module_names) | {"boto3", "botocore"}


def _import_cfnlint() -> ModuleType:
    """Import cfn-lint, failing the test (not skipping it) when it is missing."""
    try:
        import cfnlint.api
        import cfnlint.decode
    except ImportError as error:
        pytest.fail(
            f"cfn-lint is not importable from {sys.executable} ({error}); "
            "install the test dependencies with: pip install -e '.[test]'"
        )
    return cfnlint


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    """The template decoded by cfn-lint, with short tags such as !Ref turned into long form."""
    cfnlint = _import_cfnlint()
    decoded, matches = cfnlint.decode.decode(str(TEMPLATE_PATH))
    assert matches == [], f"{TEMPLATE_PATH} failed to parse: {[match.message for match in matches]}"
    return decoded


def _format_matches(matches: list[Any]) -> str:
    lines = [f"  {match.rule.id} line {match.linenumber}: {match.message}" for match in matches]
    return "\n".join(lines) or "  none"


def _properties(template: dict[str, Any], logical_id: str) -> dict[str, Any]:
    return template["Resources"][logical_id]["Properties"]


def _environment(template: dict[str, Any], logical_id: str) -> dict[str, Any]:
    """Return a function's environment variables merged over Globals, as SAM merges them."""
    global_function = template.get("Globals", {}).get("Function", {})
    global_variables = global_function.get("Environment", {}).get("Variables", {})
    own_variables = _properties(template, logical_id).get("Environment", {}).get("Variables", {})
    return {**global_variables, **own_variables}


def _statements(template: dict[str, Any], logical_id: str) -> list[dict[str, Any]]:
    statements = []
    for policy in _properties(template, logical_id).get("Policies", []):
        statements.extend(policy["Statement"])
    return statements


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _strings_in(value: Any) -> list[str]:
    """Return every string in a nested value, such as the ARN text inside a !Sub."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [text for item in value.values() for text in _strings_in(item)]
    if isinstance(value, list):
        return [text for item in value for text in _strings_in(item)]
    return []


def _grants(template: dict[str, Any], logical_id: str) -> set[tuple[str, str]]:
    """Return the (action, resource) pairs the function's statements allow, resources as JSON."""
    grants = set()
    for statement in _statements(template, logical_id):
        for action in _as_list(statement["Action"]):
            for resource in _as_list(statement["Resource"]):
                grants.add((action, json.dumps(resource, sort_keys=True)))
    return grants


def _expected_grants(template: dict[str, Any], logical_id: str) -> set[tuple[str, str]]:
    grants = {(action, json.dumps(QUEUE_ARN)) for action in DRAIN_ACTIONS}
    grants.add(("sns:Publish", json.dumps(TOPIC_ARN)))
    if logical_id == "RecursiveFunction":
        function_name = _properties(template, logical_id)["FunctionName"]["Fn::Sub"]
        own_arn = "arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:" + function_name
        grants.add(("lambda:InvokeFunction", json.dumps({"Fn::Sub": own_arn})))
    return grants


def _run_build(output_dir: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(BUILD_SCRIPT), str(output_dir)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="module")
def package_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A package built by deploy/build.sh into a temporary folder."""
    output_dir = tmp_path_factory.mktemp("lambda-package")
    result = _run_build(output_dir, cwd=output_dir)
    if result.returncode != 0:
        pytest.fail(f"deploy/build.sh exited with {result.returncode}: {result.stderr.strip()}")
    return output_dir


def _packaged_files(package_dir: Path) -> set[str]:
    return {path.relative_to(package_dir).as_posix() for path in package_dir.rglob("*") if path.is_file()}


def _module_name(package_dir: Path, path: Path) -> str:
    parts = list(path.relative_to(package_dir).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imported_modules(package_dir: Path, path: Path) -> set[str]:
    """Return the absolute names of the modules a file imports, including imports inside functions."""
    module_name = _module_name(package_dir, path)
    is_package = path.name == "__init__.py"
    package_parts = module_name.split(".") if is_package else module_name.split(".")[:-1]
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                names.add(node.module or "")
            else:
                base = package_parts[: len(package_parts) - (node.level - 1)]
                names.add(".".join(base + ([node.module] if node.module else [])))
    return names


def _module_in_package(package_dir: Path, name: str) -> bool:
    relative = Path(*name.split("."))
    return (package_dir / relative.with_suffix(".py")).is_file() or (package_dir / relative / "__init__.py").is_file()


# cfn-lint


def test_template_lint_no_errors() -> None:
    lint_matches = _import_cfnlint().api.lint_file(TEMPLATE_PATH)
    errors = [match for match in lint_matches if match.rule.id.startswith("E")]
    others = [match for match in lint_matches if not match.rule.id.startswith("E")]
    message = f"cfn-lint errors:\n{_format_matches(errors)}\nwarnings and notes:\n{_format_matches(others)}"
    assert errors == [], message


# Handlers


@pytest.mark.parametrize("logical_id", FUNCTIONS)
def test_handler_in_drain_package(template: dict[str, Any], logical_id: str) -> None:
    handler = _properties(template, logical_id)["Handler"]
    assert handler.startswith("sim.drain."), f"{logical_id} handler {handler} is outside the packaged sim/drain/"


@pytest.mark.parametrize("logical_id", FUNCTIONS)
def test_handler_importable(template: dict[str, Any], logical_id: str) -> None:
    handler = _properties(template, logical_id)["Handler"]
    module_name, _, attribute = handler.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        pytest.fail(f"{logical_id} handler {handler}: importing {module_name} failed: {error}")

    function = getattr(module, attribute, None)
    assert callable(function), f"{logical_id} handler {handler}: {module_name} has no callable {attribute}"
    try:
        inspect.signature(function).bind({}, object())
    except TypeError as error:
        pytest.fail(f"{logical_id} handler {handler} does not accept (event, context): {error}")


def test_code_uri_build_folder(template: dict[str, Any]) -> None:
    assert template["Globals"]["Function"]["CodeUri"] == "build/"


@pytest.mark.parametrize("logical_id", FUNCTIONS)
def test_code_uri_not_overridden(template: dict[str, Any], logical_id: str) -> None:
    assert "CodeUri" not in _properties(template, logical_id)


# IAM


def test_template_no_iam_resources(template: dict[str, Any]) -> None:
    iam_resources = [
        logical_id for logical_id, resource in template["Resources"].items() if resource["Type"].startswith("AWS::IAM::")
    ]
    assert iam_resources == [], "IAM resources outside the functions' Policies escape these checks"


@pytest.mark.parametrize("logical_id", FUNCTIONS)
def test_function_no_role(template: dict[str, Any], logical_id: str) -> None:
    # With Role set, SAM ignores Policies and the checks below would pass on unused statements.
    assert "Role" not in _properties(template, logical_id)


@pytest.mark.parametrize("logical_id", FUNCTIONS)
def test_policies_inline_only(template: dict[str, Any], logical_id: str) -> None:
    # Managed policies and SAM policy templates grant actions these checks cannot see.
    for policy in _properties(template, logical_id)["Policies"]:
        assert isinstance(policy, dict), f"{logical_id}: policy {policy!r} is not an inline statement list"
        assert set(policy) == {"Statement"}, f"{logical_id}: policy keys {sorted(policy)} are not just Statement"


@pytest.mark.parametrize("logical_id", FUNCTIONS)
def test_statement_keys_allowed(template: dict[str, Any], logical_id: str) -> None:
    for statement in _statements(template, logical_id):
        unexpected = set(statement) - STATEMENT_KEYS
        assert unexpected == set(), f"{logical_id}: statement {statement.get('Sid')} uses {sorted(unexpected)}"


@pytest.mark.parametrize("logical_id", FUNCTIONS)
def test_statement_effect_allow(template: dict[str, Any], logical_id: str) -> None:
    for statement in _statements(template, logical_id):
        assert statement["Effect"] == "Allow", f"{logical_id}: statement {statement.get('Sid')}"


@pytest.mark.parametrize("logical_id", FUNCTIONS)
def test_action_no_wildcard(template: dict[str, Any], logical_id: str) -> None:
    for statement in _statements(template, logical_id):
        for action in _as_list(statement["Action"]):
            assert "*" not in action, f"{logical_id}: wildcard action {action}"


@pytest.mark.parametrize("logical_id", FUNCTIONS)
def test_resource_no_wildcard(template: dict[str, Any], logical_id: str) -> None:
    for statement in _statements(template, logical_id):
        for text in _strings_in(statement["Resource"]):
            assert "*" not in text, f"{logical_id}: wildcard resource {text}"


@pytest.mark.parametrize("logical_id", FUNCTIONS)
def test_grants_exact(template: dict[str, Any], logical_id: str) -> None:
    assert _grants(template, logical_id) == _expected_grants(template, logical_id)


# Function settings


@pytest.mark.parametrize("logical_id", FUNCTIONS)
def test_environment_names_known(template: dict[str, Any], logical_id: str) -> None:
    known = COMMON_VARIABLES | (TIMER_ONLY_VARIABLES if logical_id == "TimerFunction" else set())
    unknown = set(_environment(template, logical_id)) - known
    assert unknown == set(), f"{logical_id} sets variables the handlers do not read: {sorted(unknown)}"


@pytest.mark.parametrize("logical_id", FUNCTIONS)
def test_environment_queue_and_topic(template: dict[str, Any], logical_id: str) -> None:
    variables = _environment(template, logical_id)
    assert variables["DRAIN_QUEUE_URL"] == {"Ref": "DelayQueue"}
    assert variables["DRAIN_TOPIC_ARN"] == TOPIC_ARN


@pytest.mark.parametrize(
    ("logical_id", "parameter"),
    [("TimerFunction", "TimerSafetyMarginSeconds"), ("RecursiveFunction", "RecursiveSafetyMarginSeconds")],
)
def test_environment_safety_margin(template: dict[str, Any], logical_id: str, parameter: str) -> None:
    assert _environment(template, logical_id)["DRAIN_SAFETY_MARGIN_S"] == {"Ref": parameter}


@pytest.mark.parametrize(
    ("variable", "parameter"),
    [("DRAIN_BASELINE_S", "TimerBaselineSeconds"), ("DRAIN_BASELINE_CLOCK", "TimerBaselineClock")],
)
def test_timer_environment_baseline(template: dict[str, Any], variable: str, parameter: str) -> None:
    assert _environment(template, "TimerFunction")[variable] == {"Ref": parameter}


def test_recursive_loop_parameter(template: dict[str, Any]) -> None:
    assert _properties(template, "RecursiveFunction")["RecursiveLoop"] == {"Ref": "RecursiveLoop"}
    assert template["Parameters"]["RecursiveLoop"]["AllowedValues"] == ["Allow", "Terminate"]


def test_timer_schedule_event(template: dict[str, Any]) -> None:
    events = _properties(template, "TimerFunction")["Events"]
    schedules = [event for event in events.values() if event["Type"] == "Schedule"]
    assert len(schedules) == 1
    assert schedules[0]["Properties"]["Schedule"] == {"Ref": "TimerSchedule"}
    assert schedules[0]["Properties"]["State"] == {"Ref": "TimerScheduleState"}


def test_watchdog_disabled_default(template: dict[str, Any]) -> None:
    watchdog = _properties(template, "RecursiveFunction")["Events"]["Watchdog"]["Properties"]
    assert watchdog["State"] == {"Ref": "RecursiveWatchdogState"}
    assert template["Parameters"]["RecursiveWatchdogState"]["Default"] == "DISABLED"


def test_queue_redrive_dead_letter(template: dict[str, Any]) -> None:
    redrive = _properties(template, "DelayQueue")["RedrivePolicy"]
    assert redrive["deadLetterTargetArn"] == {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}
    assert redrive["maxReceiveCount"] == {"Ref": "MaxReceiveCount"}


@pytest.mark.parametrize(
    ("parameter", "default"),
    [
        ("Architecture", "x86_64"),
        ("PythonRuntime", "python3.11"),
        ("QueueVisibilityTimeout", "30"),
        ("MaxReceiveCount", "5"),
        ("BatchSize", "10"),
        ("WaitSeconds", "3"),
        ("ReceiveVisibilityTimeout", ""),
        ("PublishApi", "batch"),
        ("DeleteApi", "batch"),
        ("TimerSchedule", "rate(1 minute)"),
        ("TimerTimeout", "300"),
        ("TimerMemorySize", "256"),
        ("TimerBaselineSeconds", "60"),
        ("TimerBaselineClock", "invocation"),
        ("TimerSafetyMarginSeconds", "2"),
        ("RecursiveSafetyMarginSeconds", "10"),
    ],
)
def test_parameter_default(template: dict[str, Any], parameter: str, default: str) -> None:
    assert str(template["Parameters"][parameter]["Default"]) == default


@pytest.mark.parametrize(
    ("value", "allowed"),
    [
        ("", True),
        ("0", True),
        ("30", True),
        ("9999", True),
        ("39999", True),
        ("42999", True),
        ("43199", True),
        ("43200", True),
        ("43201", False),
        ("43300", False),
        ("99999", False),
        ("-1", False),
        ("1.5", False),
        ("abc", False),
    ],
)
def test_receive_visibility_pattern(template: dict[str, Any], value: str, allowed: bool) -> None:
    # CloudFormation matches AllowedPattern against the whole value, as re.fullmatch does.
    pattern = template["Parameters"]["ReceiveVisibilityTimeout"]["AllowedPattern"]
    assert (re.fullmatch(pattern, value) is not None) == allowed


@pytest.mark.parametrize(
    "output",
    [
        "QueueUrl",
        "QueueArn",
        "DeadLetterQueueUrl",
        "TopicArn",
        "TimerFunctionName",
        "TimerRuleName",
        "RecursiveFunctionName",
    ],
)
def test_output_present(template: dict[str, Any], output: str) -> None:
    assert output in template["Outputs"]


def test_docs_list_parameters(template: dict[str, Any]) -> None:
    text = DEPLOY_DOC.read_text()
    missing = [name for name in template["Parameters"] if f"`{name}`" not in text]
    assert missing == [], f"{DEPLOY_DOC.relative_to(REPO_ROOT)} does not document these parameters"


# Build script


@pytest.mark.parametrize("path", ["sim/__init__.py", "sim/drain/handlers.py"])
def test_package_contains(package_dir: Path, path: str) -> None:
    assert (package_dir / path).is_file()


def test_package_only_drain_code(package_dir: Path) -> None:
    drain_files = {f"sim/drain/{path.name}" for path in (REPO_ROOT / "sim" / "drain").glob("*.py")}
    assert _packaged_files(package_dir) == {"sim/__init__.py"} | drain_files


def test_package_imports_runtime_only(package_dir: Path) -> None:
    for path in sorted(package_dir.rglob("*.py")):
        for name in sorted(_imported_modules(package_dir, path)):
            top_level = name.split(".")[0]
            if top_level == "sim":
                assert _module_in_package(package_dir, name), f"{path.name} imports {name}, not packaged"
            else:
                assert top_level in RUNTIME_MODULES, f"{path.name} imports {name}, not in the Lambda runtime"


def test_package_handlers_import(template: dict[str, Any], package_dir: Path) -> None:
    # -I leaves out the working folder and PYTHONPATH, so `sim` can come only from the package.
    handlers = [_properties(template, logical_id)["Handler"] for logical_id in FUNCTIONS]
    script = (
        "import importlib, sys\n"
        "sys.path.insert(0, sys.argv[1])\n"
        "import sim\n"
        "print(sim.__file__)\n"
        "for handler in sys.argv[2:]:\n"
        "    module_name, _, attribute = handler.rpartition('.')\n"
        "    print(callable(getattr(importlib.import_module(module_name), attribute)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-I", "-c", script, str(package_dir), *handlers],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, f"importing the packaged handlers failed:\n{result.stderr}"
    lines = result.stdout.splitlines()
    assert Path(lines[0]).is_relative_to(package_dir), f"sim was imported from {lines[0]}, not the package"
    assert lines[1:] == ["True"] * len(handlers)


def test_build_replaces_stale_files(tmp_path: Path) -> None:
    stale = tmp_path / "sim" / "engine.py"
    stale.parent.mkdir()
    stale.write_text("import numpy\n")
    kept = tmp_path / "README.txt"
    kept.write_text("not part of the package\n")

    result = _run_build(tmp_path, cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert not stale.exists()
    assert kept.exists()
