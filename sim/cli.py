"""The drainsim command line: run, compare and plot scenarios."""

from __future__ import annotations

import argparse
import logging
import os
import re
import signal
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

from sim import __version__
from sim.errors import UserInputError
from sim.scenario import MAX_DURATION_S, MAX_SEED, Scenario, load_scenario

logger = logging.getLogger("sim.cli")

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143
DEFAULT_RESULTS_ROOT = Path("results")
ENGINES = ("sim", "live")
# A run id names one folder under the scenario's folder, so it must not contain a path separator.
RUN_ID_PATTERN = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,99}")


class _Terminated(Exception):
    """Raised in the main thread when SIGTERM arrives, so cleanup code runs as for Ctrl-C."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = _build_parser()
    args = parser.parse_args(argv)
    _configure_logging(args.verbose - args.quiet)
    signal.signal(signal.SIGTERM, _raise_terminated)
    # A shell starting drainsim in the background ignores SIGINT for it; restore Ctrl-C.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return args.command(args)
    except UserInputError as error:
        print(f"drainsim: error: {error}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print(f"drainsim: interrupted; {_KEPT.get(args.command, _KEPT[None])}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except _Terminated:
        print(f"drainsim: terminated; {_KEPT.get(args.command, _KEPT[None])}", file=sys.stderr)
        return EXIT_TERMINATED


# Results an interrupted command keeps, for the message printed on Ctrl-C or SIGTERM.
_KEPT: dict[Any, str] = {
    None: "no partial results were kept",
}


def _raise_terminated(signum: int, frame: Any) -> None:
    raise _Terminated()


# ---------------------------------------------------------------------------------------------
# Options


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid seed {text!r}: give an integer from 0 to {MAX_SEED}") from None
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"invalid seed {value}: give an integer from 0 to {MAX_SEED}")
    return value


def _duration(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid duration {text!r}: give seconds above 0 and at most {MAX_DURATION_S:.0f}, such as 3600"
        ) from None
    if not 0 < value <= MAX_DURATION_S:
        raise argparse.ArgumentTypeError(
            f"invalid duration {value}: give seconds above 0 and at most {MAX_DURATION_S:.0f}"
        )
    return value


def _run_id(text: str) -> str:
    if not RUN_ID_PATTERN.fullmatch(text):
        raise argparse.ArgumentTypeError(
            f"invalid run id {text!r}: use 1 to 100 letters, digits, '.', '_' or '-', not starting with '.'"
        )
    return text


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="drainsim",
        description="Simulate and compare ways for AWS Lambda to drain an SQS delay queue into SNS.",
    )
    parser.add_argument("--version", action="version", version=f"drainsim {__version__}")
    commands = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="simulate the designs of one scenario", description="Simulate the designs of one scenario and write its results and plots.")
    run.add_argument("scenario", type=Path, metavar="SCENARIO", help="scenario file (.toml)")
    run.add_argument("--design", action="append", metavar="NAME", help="simulate only this design (repeatable); default: all designs of the scenario")
    _add_common_run_options(run)
    run.add_argument("--duration", type=_duration, metavar="S", help=f"replace the scenario's duration_s: seconds of simulated time during which messages fall due (above 0, at most {MAX_DURATION_S:.0f})")
    run.add_argument("--engine", choices=ENGINES, default="sim", help="sim: simulate (default); live: run the handlers for real against an SQS/SNS server, taking duration_s plus the drain time in wall-clock time")
    _add_live_options(run)
    run.set_defaults(command=_command_run)

    compare = commands.add_parser("compare", help="simulate every design of one or more scenarios and print a table per scenario", description="Simulate every design of each scenario on the same arrivals, print one table per scenario and write results and plots.")
    compare.add_argument("scenarios", type=Path, nargs="+", metavar="SCENARIO", help="scenario files (.toml)")
    compare.add_argument("--engines", type=_engines, default=["sim"], metavar="LIST", help="comma-separated engines to run each scenario on: sim, live or sim,live (default: sim); with both, each design's simulated and live results are printed side by side")
    _add_common_run_options(compare)
    _add_live_options(compare)
    compare.set_defaults(command=_command_compare)

    sweep = commands.add_parser("sweep", help="run every point of a scenario's [sweep] section with several seeds", description="Run every point and replication of a scenario's [sweep] section, write sweep.parquet (one row per point, replication and design) and points.parquet (mean and 95%% confidence interval per point), and draw the sweep plots. Rerunning with the same --out skips the finished runs.")
    sweep.add_argument("scenario", type=Path, metavar="SCENARIO", help="scenario file (.toml) with a [sweep] section")
    sweep.add_argument("--workers", type=_workers, default=os.cpu_count() or 1, metavar="N", help=f"local worker processes (default: all {os.cpu_count() or 1} cores)")
    sweep.add_argument("--dask", metavar="ADDRESS", help="run on the Dask distributed scheduler at ADDRESS, such as tcp://127.0.0.1:8786, instead of local processes")
    sweep.add_argument("--seed", type=_seed, metavar="N", help=f"replace the scenario's seed (integer, 0 to {MAX_SEED})")
    sweep.add_argument("--out", type=Path, metavar="DIR", help="sweep folder; a rerun with the same folder continues the sweep (default: results/<scenario>/sweep)")
    sweep.add_argument("--no-plots", action="store_true", help="write the tables but no PNG plots")
    sweep.set_defaults(command=_command_sweep)
    _KEPT[_command_sweep] = "every finished run was kept; rerun the same command to continue"

    tune = commands.add_parser("tune", help="search a scenario's [sweep] parameters for the cheapest settings that meet constraints", description="Run an Optuna (TPE) study over the [sweep] parameters: each trial runs every replication of one point. Rerunning with the same --out adds --trials more trials to the study.")
    tune.add_argument("scenario", type=Path, metavar="SCENARIO", help="scenario file (.toml) with a [sweep] section")
    tune.add_argument("--minimize", required=True, metavar="METRIC", help="metric of the tuned design to minimize, such as cost_usd.per_million_messages (names as in sweep.parquet)")
    tune.add_argument("--subject-to", dest="constraints", action="append", default=[], type=_constraint, metavar="BOUND", help="bound on a metric's mean over the replications: METRIC<=VALUE, >=, < or >, such as lateness_s.p99<=2 (seconds); repeatable")
    tune.add_argument("--trials", type=_trials, default=50, metavar="N", help="trials to add to the study (default 50)")
    tune.add_argument("--workers", type=_workers, default=os.cpu_count() or 1, metavar="N", help="processes running a trial's replications, at most one per replication")
    tune.add_argument("--seed", type=_seed, metavar="N", help=f"replace the scenario's seed (integer, 0 to {MAX_SEED}); a new seed needs a new --out")
    tune.add_argument("--out", type=Path, metavar="DIR", help="study folder holding study.db; a rerun continues the study (default: results/<scenario>/tune)")
    tune.set_defaults(command=_command_tune)
    _KEPT[_command_tune] = "finished trials are kept in the study; rerun to add more"

    plot = commands.add_parser("plot", help="redraw the plots of a results folder", description="Redraw the PNG plots of a results folder from its summary and Parquet files.")
    plot.add_argument("folder", type=Path, metavar="RESULT_DIR", help="a results folder, such as results/flat/<run-id>")
    plot.set_defaults(command=_command_plot)

    for sub in (run, compare, sweep, tune, plot):
        sub.add_argument("-v", "--verbose", action="count", default=0, help="log more: -v for progress messages, -vv for simulation details")
        sub.add_argument("-q", "--quiet", action="count", default=0, help="log only errors and hide the progress bar")
    return parser


def _add_common_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=_seed, metavar="N", help=f"replace the scenario's seed (integer, 0 to {MAX_SEED})")
    parser.add_argument("--out", type=Path, default=DEFAULT_RESULTS_ROOT, metavar="DIR", help="output root; each run is written to DIR/<scenario>/<run-id>/ (default: results)")
    parser.add_argument("--run-id", type=_run_id, metavar="ID", help="name of the run folder: letters, digits, '.', '_' and '-' (default: UTC time and seed, such as 20261204T201500Z-seed42)")
    parser.add_argument("--no-plots", action="store_true", help="write the summary and tables but no PNG plots")


def _add_live_options(parser: argparse.ArgumentParser) -> None:
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--endpoint-url", metavar="URL", help="live engine: use this SQS/SNS-compatible server (ElasticMQ, LocalStack, moto) instead of starting an embedded moto server on 127.0.0.1")
    target.add_argument("--aws", action="store_true", help="live engine: use a real AWS account with your credentials; needs --region, creates and deletes queues and a topic, and costs money")
    parser.add_argument("--region", metavar="R", help="live engine: AWS Region (required with --aws; default us-east-1 for local servers)")


def _engines(text: str) -> list[str]:
    engines = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [engine for engine in engines if engine not in ENGINES]
    if not engines or unknown or len(set(engines)) != len(engines):
        raise argparse.ArgumentTypeError(f"invalid engines {text!r}: give sim, live or sim,live")
    return engines


def _configure_logging(level_shift: int) -> None:
    level = {-1: logging.ERROR, 0: logging.WARNING, 1: logging.INFO}.get(level_shift)
    if level is None:
        level = logging.DEBUG if level_shift > 1 else logging.ERROR
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)


# ---------------------------------------------------------------------------------------------
# Commands


def _command_run(args: argparse.Namespace) -> int:
    overrides: dict[str, Any] = {}
    if args.seed is not None:
        overrides["seed"] = args.seed
    if args.duration is not None:
        overrides["duration_s"] = args.duration
    scenario = _load(args.scenario, overrides)
    _run_all([scenario], args, design_names=args.design, engines=[args.engine])
    return 0


def _command_compare(args: argparse.Namespace) -> int:
    overrides = {"seed": args.seed} if args.seed is not None else {}
    # Every file is validated before the first simulation, so a typo in the last one costs nothing.
    scenarios = [_load(path, overrides) for path in args.scenarios]
    names = [scenario.name for scenario in scenarios]
    if len(set(names)) != len(names):
        raise UserInputError(f"scenario names must differ, as they name the result folders: {', '.join(names)}")
    _run_all(scenarios, args, design_names=None, engines=args.engines)
    return 0


def _workers(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid worker count {text!r}: give an integer from 1 to 256") from None
    if not 1 <= value <= 256:
        raise argparse.ArgumentTypeError(f"invalid worker count {value}: give an integer from 1 to 256")
    return value


def _command_sweep(args: argparse.Namespace) -> int:
    from sim.sweep import run_sweep
    from sim.sweep_report import format_sweep_report, write_sweep_outputs

    overrides = {"seed": args.seed} if args.seed is not None else {}
    scenario = _load(args.scenario, overrides)
    folder = args.out or DEFAULT_RESULTS_ROOT / scenario.name / "sweep"
    report = run_sweep(scenario, folder, args.workers, args.dask, progress=None if args.quiet else _sweep_progress)
    if not args.no_plots:
        write_sweep_outputs(scenario, report)
    print(format_sweep_report(scenario, report))
    return 0


def _sweep_progress(total: int, done: int) -> Callable[[], None]:
    from tqdm import tqdm

    bar = tqdm(total=total, initial=done, desc="sweep", unit="run", file=sys.stderr, disable=not sys.stderr.isatty())

    def step() -> None:
        bar.update(1)
        if bar.n >= bar.total:
            bar.close()

    return step


def _constraint(text: str) -> Any:
    from sim.tune import parse_constraint

    try:
        return parse_constraint(text)
    except UserInputError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _trials(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid trial count {text!r}: give an integer from 1 to 100000") from None
    if not 1 <= value <= 100_000:
        raise argparse.ArgumentTypeError(f"invalid trial count {value}: give an integer from 1 to 100000")
    return value


def _command_tune(args: argparse.Namespace) -> int:
    from sim.tune import format_tune_report, run_tune

    overrides = {"seed": args.seed} if args.seed is not None else {}
    scenario = _load(args.scenario, overrides)
    folder = args.out or DEFAULT_RESULTS_ROOT / scenario.name / "tune"
    report = run_tune(scenario, args.minimize, args.constraints, args.trials, folder, args.workers)
    print(format_tune_report(report, args.minimize, args.constraints))
    return 0


def _command_plot(args: argparse.Namespace) -> int:
    from sim.plots import write_plots
    from sim.results import load_results

    summary, messages, invocations, concurrency = load_results(args.folder)
    paths = write_plots(args.folder, summary, messages, invocations, concurrency)
    for path in paths:
        print(path)
    return 0


def _load(path: Path, overrides: dict[str, Any]) -> Scenario:
    scenario = load_scenario(path, overrides)
    for warning in scenario.warnings():
        logger.warning("%s: %s", path, warning)
    return scenario


def _run_all(scenarios: list[Scenario], args: argparse.Namespace, design_names: Sequence[str] | None, engines: list[str]) -> None:
    """Run and write each scenario on each engine, after checking every input of every one."""
    from sim.results import check_output_root
    from sim.runner import prepare_arrivals, select_designs

    check_output_root(args.out)
    endpoint_choice = _endpoint_choice(args, engines)
    prepared = []
    for scenario in scenarios:
        check_output_root(args.out / scenario.name)
        names = select_designs(scenario, design_names)
        prepared.append((scenario, names, prepare_arrivals(scenario, names)))
    for scenario, names, arrivals in prepared:
        run_id = args.run_id or _new_run_id(scenario.seed)
        summaries = {}
        for engine in engines:
            engine_run_id = run_id if len(engines) == 1 else f"{run_id}-{engine}"
            summaries[engine] = _run_and_write(scenario, args, names, arrivals, engine, engine_run_id, endpoint_choice)
        if len(engines) > 1:
            from sim.report import format_comparison, side_by_side

            print(format_comparison(side_by_side(summaries)))


def _new_run_id(seed: int) -> str:
    from sim.results import new_run_id

    return new_run_id(seed)


def _endpoint_choice(args: argparse.Namespace, engines: list[str]) -> dict[str, Any]:
    """Check the live options; return how the live engine should reach SQS and SNS."""
    live_options = args.aws or args.endpoint_url or args.region
    if "live" not in engines:
        if live_options:
            raise UserInputError(
                "--aws, --endpoint-url and --region apply to the live engine only; add --engine live "
                "to run, or --engines sim,live to compare"
            )
        return {}
    if args.aws and not args.region:
        raise UserInputError("--aws needs --region, such as --region eu-west-1; drainsim never picks a Region for a real account")
    if args.endpoint_url and not args.endpoint_url.startswith(("http://", "https://")):
        raise UserInputError(f"invalid --endpoint-url {args.endpoint_url!r}: give an http:// or https:// URL")
    return {"aws": args.aws, "url": args.endpoint_url, "region": args.region or "us-east-1"}


def _run_and_write(
    scenario: Scenario,
    args: argparse.Namespace,
    names: list[str],
    arrivals: Any,
    engine: str,
    run_id: str,
    endpoint_choice: dict[str, Any],
) -> dict[str, Any]:
    from sim.plots import write_plots
    from sim.report import format_comparison
    from sim.results import write_results
    from sim.runner import run_scenario

    extra_tables = {}
    run_info: dict[str, Any] = {"command": ["drainsim", *sys.argv[1:]]}
    if engine == "live":
        live = _run_live(scenario, names, arrivals, endpoint_choice, args)
        result = live.result
        extra_tables["api_latency"] = live.api_latency
        run_info["endpoint"] = live.endpoint
    else:
        with _ProgressBar(scenario, names, enabled=args.quiet == 0) as progress:
            result = run_scenario(scenario, names, progress.for_design, arrivals)
    folder = write_results(
        result,
        args.out,
        run_id,
        plot_writer=None if args.no_plots else write_plots,
        run_info=run_info,
        extra_tables=extra_tables,
    )
    print(format_comparison(result.summary))
    print(f"results: {folder}")
    return result.summary


def _run_live(scenario: Scenario, names: list[str], arrivals: Any, choice: dict[str, Any], args: argparse.Namespace) -> Any:
    from sim.live.endpoint import aws_endpoint, custom_endpoint
    from sim.live.engine import run_live

    endpoint = None
    if choice["aws"]:
        endpoint = aws_endpoint(choice["region"])
    elif choice["url"]:
        endpoint = custom_endpoint(choice["url"], choice["region"])
    where = endpoint.describe() if endpoint else "an embedded moto server on 127.0.0.1"
    print(f"live run of {scenario.name} against {where}", file=sys.stderr)
    total_s = scenario.duration_s + scenario.drain_s
    with _ProgressBar(scenario, ["live"], enabled=args.quiet == 0, total_s=total_s, unit="s") as progress:
        return run_live(scenario, endpoint, names, arrivals, progress.for_design("live"))


class _ProgressBar:
    """A progress bar on stderr showing simulated time, one bar per scenario."""

    def __init__(self, scenario: Scenario, design_names: list[str], enabled: bool, total_s: float | None = None, unit: str = "sim s") -> None:
        from sim.simulation import run_end_at_s

        self._end_at_s = total_s if total_s is not None else run_end_at_s(scenario)
        self._total_s = self._end_at_s * len(design_names)
        self._unit = unit
        self._enabled = enabled and sys.stderr.isatty()
        self._bar: Any = None
        self._done_s = 0.0
        self._label = scenario.name

    def __enter__(self) -> _ProgressBar:
        if self._enabled:
            from tqdm import tqdm

            self._bar = tqdm(total=round(self._total_s), desc=self._label, unit=self._unit, file=sys.stderr, leave=False)
        return self

    def __exit__(self, *exc_info: Any) -> None:
        if self._bar is not None:
            self._bar.close()

    def for_design(self, design_name: str) -> Callable[[float], None] | None:
        if self._bar is None:
            return None
        offset_s = self._done_s
        self._done_s += self._end_at_s
        self._bar.set_description(f"{self._label}/{design_name}")

        def update(simulated_s: float) -> None:
            self._bar.n = round(offset_s + simulated_s)
            self._bar.refresh()

        return update
