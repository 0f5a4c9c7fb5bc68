"""The `gpuobs` command: a thin shell over the library; errors become messages and exit codes."""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path

import click

from gpuobs import tools
from gpuobs.errors import GpuobsError


def _errors_to_exit(command):
    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except GpuobsError as exc:
            click.echo(str(exc), err=True)
            sys.exit(exc.exit_code)
    return wrapper


SPECS = click.argument("specs", nargs=-1, required=True, type=click.Path(path_type=Path))
OUT = click.option("-o", "--out", "out_dir", default="generated", show_default=True,
                   type=click.Path(file_okay=False, path_type=Path), help="output folder; each spec "
                   "writes <out>/<fleet name>/")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="gpuobs")
def main():
    """Prometheus, Alertmanager and Grafana configuration for GPU fleets, generated from one spec."""


@main.command()
@SPECS
@OUT
@_errors_to_exit
def generate(specs, out_dir):
    """Write each spec's output under OUT.

    Every spec in SPECS must be valid before anything is written; each fleet folder is swapped in
    whole, so a failure leaves the previous output untouched."""
    from gpuobs.generate import generate as run_generate
    outputs = run_generate(specs, out_dir)
    for name, files in outputs.items():
        click.echo(f"{out_dir / name}: {len(files)} files")


@main.command()
@SPECS
@OUT
@_errors_to_exit
def check(specs, out_dir):
    """Check that the output is current.

    Exits 1 with a diff when the output under OUT is not what SPECS generate."""
    from gpuobs.generate import check as run_check
    diffs = run_check(specs, out_dir)
    if diffs:
        click.echo("".join(diffs), nl=False)
        click.echo(f"{len(diffs)} generated file(s) are stale; run: gpuobs generate "
                   f"{' '.join(map(str, specs))} -o {out_dir}", err=True)
        sys.exit(1)
    click.echo("generated output is current")


@main.command()
@click.argument("spec", type=click.Path(path_type=Path))
@_errors_to_exit
def validate(spec):
    """Check a spec and its output.

    Reports every problem of SPEC and the alerts each exporter setup leaves blind, then checks the
    output with promtool and amtool when they are on PATH."""
    from gpuobs.validate import validate_spec
    said = validate_spec(spec)
    for line in said:
        click.echo(line.rstrip())
    missing = [t for t in ("promtool", "amtool") if not tools.available(t)]
    if missing:
        click.echo(f"{spec}: spec is valid; not checked with {', '.join(missing)} (not on PATH)")
    else:
        click.echo(f"{spec}: valid")


@main.command("test")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@_errors_to_exit
def test_command(folder):
    """Run the generated tests.

    The promtool unit tests and the routing tests (amtool) of every fleet under FOLDER: generated/
    or generated/<fleet>."""
    from gpuobs.validate import find_outputs, run_tests
    outputs = find_outputs(folder)
    if not outputs:
        raise click.UsageError(f"no generated fleet output (prometheus/rules/alerts.yml) under {folder}")
    for output in outputs:
        click.echo(f"{output}:")
        click.echo(run_tests(output).rstrip())


@main.command()
@click.option("--spec", "spec", default="specs/demo.yaml", show_default=True, type=click.Path(path_type=Path))
@OUT
@click.option("--fault", help="start this simulator fault on the first host, e.g. thermal-runaway")
@click.option("--fault-gpu", default=0, show_default=True, help="GPU index the fault hits")
@click.option("--duration", type=float, help="stop after this many seconds instead of at Ctrl-C")
@_errors_to_exit
def demo(spec, out_dir, fault, fault_gpu, duration):
    """Run the demo fleet, without Docker.

    Generates the spec, then runs the simulator, Alertmanager, Prometheus and a webhook sink that
    prints notifications, on the ports the generated configuration names; Ctrl-C stops them all."""
    from gpuobs.demo import run_demo
    run_demo(spec, out_dir, lambda line: click.echo(line), fault=fault, fault_gpu=fault_gpu, duration=duration)


@main.command()
def schema():
    """Print the spec format's JSON Schema.

    For editors that validate YAML against a schema, such as the YAML language server."""
    from gpuobs.spec import json_schema
    click.echo(json.dumps(json_schema(), indent=2))
