"""`sealtrail bucket init [--check] | bucket policy | bucket terraform` and `sealtrail hold`: the bucket and its retention."""

from __future__ import annotations

import json
from datetime import date, datetime, timezone
from pathlib import Path

import click

from sealtrail.cli.main import Context, cli
from sealtrail.cli.progress import write_or_print
from sealtrail.errors import ConfigError

_MARK = {"ok": "ok", "created": "created", "changed": "changed", "missing": "MISSING",
         "unsupported": "UNSUPPORTED", "conflict": "CONFLICT"}


@cli.group()
def bucket() -> None:
    """The audit bucket: Object Lock, default retention, encryption and lifecycle from the retention policy."""


@bucket.command("init")
@click.option("--check", "check_only", is_flag=True, help="only report how the bucket differs; change nothing")
@click.option("--json", "as_json", is_flag=True, help="machine-readable report")
@click.pass_obj
def bucket_init(ctx: Context, check_only: bool, as_json: bool) -> int:
    """Create the bucket, or complete it, as the retention policy wants; running it again changes nothing.

    Exits 0 when the bucket has everything the policy asks, 1 when gaps
    remain (missing with --check; refused by the store; or someone else's
    lifecycle rule that would expire trail objects early), 2 on an error.
    """
    from sealtrail.retention import policy_for
    from sealtrail.sinks.bucket import init_bucket
    from sealtrail.sinks.s3 import S3Store

    settings = ctx.settings
    policy = policy_for(settings)
    report = init_bucket(S3Store(settings), policy, settings.s3.prefix, settings.s3.region, check_only=check_only)
    if as_json:
        click.echo(json.dumps(report.as_json(), indent=2))
    else:
        click.echo(f"bucket {report.bucket} (trail prefix {report.prefix!r}), policy {report.policy}")
        for item in report.items:
            click.echo(f"  {_MARK[item.status.value]:<12} {item.name:<22} {item.detail}")
        if report.gaps:
            click.echo(f"{len(report.gaps)} gap(s)" + ("" if check_only else " remain"))
        else:
            click.echo("nothing changed: the bucket is as the policy wants" if not report.changed
                       else f"{len(report.changed)} change(s); the bucket is as the policy wants")
    return 1 if report.gaps else 0


@bucket.command("policy")
@click.pass_obj
def bucket_policy(ctx: Context) -> None:
    """Print the retention policy in effect and the lifecycle rules it implies."""
    from sealtrail.retention import policy_for
    from sealtrail.sinks.bucket import desired_default_retention, desired_lifecycle

    policy = policy_for(ctx.settings)
    for line in policy.describe():
        click.echo(line)
    longest = policy.longest_lock(datetime.now(timezone.utc))
    click.echo(f"  digests and public keys: {longest.mode} for the longest period (rule {', '.join(longest.rules)})")
    click.echo(f"  bucket default retention: {json.dumps(desired_default_retention(policy))}")
    click.echo(f"  encryption: {policy.encryption}" + (f" ({policy.kms_key_id})" if policy.kms_key_id else ""))
    click.echo("  lifecycle rules:")
    for rule in desired_lifecycle(policy, ctx.settings.s3.prefix):
        click.echo(f"    {json.dumps(rule)}")


def _day(value: str, flag: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as e:
        raise ConfigError(flag, f"not a date (YYYY-MM-DD): {value!r}") from e


@bucket.command("terraform")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="write here (deploy/terraform/modules/sealtrail/generated.tf.json) instead of printing")
@click.pass_obj
def bucket_terraform(ctx: Context, out: Path | None) -> None:
    """Print the Terraform module's generated locals: default retention, lifecycle rules and table columns.

    From the retention policy in effect (retention.policy_file, or mode and days), so a bucket the module
    builds is the one `sealtrail bucket init --check` accepts. Run it again when the policy changes.
    """
    from sealtrail.retention import policy_for
    from sealtrail.sinks.terraform import generated_file

    text = generated_file(policy_for(ctx.settings))
    write_or_print(text, out)


@cli.command()
@click.option("--from", "first", required=True, help="first dt= day (YYYY-MM-DD, the UTC sealing date)")
@click.option("--to", "last", required=True, help="last dt= day, inclusive")
@click.option("--tenant", help="only objects holding at least one event of this tenant")
@click.option("--release", is_flag=True, help="lift the legal hold instead of placing it")
@click.pass_obj
def hold(ctx: Context, first: str, last: str, tenant: str | None, release: bool) -> None:
    """Place (or --release) a legal hold on the data objects of a date range.

    Acts on the current version of every data object whose dt= day is in the
    range (and, with --tenant, that holds an event of that tenant: its tenant
    column is read). Objects already in the wanted state are left alone, so
    running it again changes nothing. A legal hold keeps an object beyond its
    retain-until date until it is released. It is one flag per object version,
    not a count: releasing a range releases it for every matter that shared
    those objects.
    """
    from sealtrail.sinks.bucket import data_objects_between, set_hold
    from sealtrail.sinks.s3 import S3Store

    settings = ctx.settings
    store = S3Store(settings)
    on = not release
    changed = unchanged = skipped = 0
    for obj in data_objects_between(store, settings.s3.prefix, _day(first, "--from"), _day(last, "--to")):
        result = set_hold(store, obj, on, tenant)
        if result is None:
            skipped += 1
            continue
        if result.changed:
            changed += 1
            click.echo(f"{'held    ' if on else 'released'} {result.key} (version {result.version_id})")
        else:
            unchanged += 1
            click.echo(f"{'already held' if on else 'not held'} {result.key} (version {result.version_id})")
    verb = "placed" if on else "released"
    whose = f" with events of tenant {tenant!r}" if tenant else ""
    click.echo(f"legal hold {verb} on {changed} object(s){whose} from {first} to {last}; "
               f"{unchanged} already {'held' if on else 'free'}" + (f"; {skipped} without that tenant" if tenant
                                                                     else ""))
