"""`sealtrail prove | check-proof`: one event shown to an auditor, checked with public keys alone."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from sealtrail.cli.main import Context, cli
from sealtrail.errors import ConfigError, NotProvableError

if TYPE_CHECKING:
    from sealtrail.store import ObjectStore


@cli.command()
@click.argument("event_id", required=False)
@click.option("--partition", type=click.IntRange(0), help="audit.events partition of an acknowledgement")
@click.option("--offset", type=click.IntRange(0), help="audit.events offset of an acknowledgement (with --partition)")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path),
              help="write the proof to this file instead of stdout")
@click.option("--path", "bundle", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="prove from an exported bundle folder instead of the bucket")
@click.pass_obj
def prove(ctx: Context, event_id: str | None, partition: int | None, offset: int | None, out: Path | None,
          bundle: Path | None) -> int:
    """Print an inclusion proof of EVENT_ID: the record, a Merkle path, and the signed digest over it.

    With --partition and --offset (what a producer's acknowledgement holds), say first what that
    input became: sealed at seq N (then its proof follows), rejected with reason R, or a duplicate
    of an event sealed before. Exit 0 with the answer, 1 when the trail holds nothing to prove
    (unknown event or offset, or its object not yet digested), 2 on an error.
    """
    if (partition is None) != (offset is None):
        raise ConfigError("--partition/--offset", "give both, the partition and the offset of an acknowledgement")
    located = None
    if partition is not None and offset is not None:
        from sealtrail.evidence.query import locate_input

        located = locate_input(ctx.settings, partition, offset, bundle)
        if located is None:
            raise NotProvableError(f"input offset {offset} of partition {partition} is not in the trail "
                                   "(not sealed yet, or lost: run sealtrail verify)")
        if located["kind"] != "event":
            _emit(json.dumps({"input": located}, indent=2) + "\n", out)
            return 0
        event_id = located["event_id"]
    if not event_id:
        raise ConfigError("EVENT_ID", "name an event id, or an acknowledgement with --partition and --offset")
    from sealtrail.evidence.proof import build_proof

    store: ObjectStore
    if bundle is not None:
        from sealtrail.evidence.bundle import DirectoryStore

        store = DirectoryStore(bundle)
    else:
        from sealtrail.sinks.s3 import S3Store

        store = S3Store(ctx.settings)
    proof = build_proof(store, ctx.settings, event_id, bundle)
    _emit(json.dumps({"input": located, **proof} if located else proof, indent=2) + "\n", out)
    return 0


def _emit(text: str, out: Path | None) -> None:
    if out is None:
        click.echo(text, nl=False)
        return
    try:
        out.write_text(text)
    except OSError as e:
        raise ConfigError("--out", f"cannot write {out}: {e}") from e


@cli.command("check-proof")
@click.argument("proof_file", type=click.Path(dir_okay=False, path_type=Path, allow_dash=True))
@click.option("--key", "key_files", multiple=True, required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="a public key (PEM) the auditor trusts; repeatable")
@click.option("--json", "as_json", is_flag=True, help="the result as JSON")
def check_proof_cmd(proof_file: Path, key_files: tuple[Path, ...], as_json: bool) -> int:
    """Check a proof offline with the given public keys: exit 0 valid, 1 invalid, 2 not a proof or no key."""
    from sealtrail.evidence.proof import check_proof

    try:
        raw = click.get_text_stream("stdin").read() if str(proof_file) == "-" else proof_file.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError("proof", f"cannot read {proof_file}: {e}") from e
    try:
        doc = json.loads(raw)
    except ValueError as e:
        raise ConfigError("proof", f"{proof_file} is not JSON: {e}") from e
    except RecursionError as e:
        raise ConfigError("proof", f"{proof_file} is nested too deeply to be a proof") from e
    pems = []
    for path in key_files:
        try:
            pems.append(path.read_bytes())
        except OSError as e:
            raise ConfigError("--key", f"cannot read {path}: {e}") from e
    result = check_proof(doc, pems)
    if as_json:
        click.echo(json.dumps(result.as_dict(), indent=2))
    else:
        click.echo(result.text(), nl=False)
    return 0 if result.ok else 1
