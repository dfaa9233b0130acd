"""Command line on the job API: submit to the configured queue and follow jobs.

    python -m tasks submit anomaly --param object_name="metal plate" --param preset=winclip-tiny a.png [--wait 600]
    python -m tasks submit anomaly_video --input video=line.mp4 --param object_name=gear --param stride=5
    python -m tasks submit anomaly_evaluate --input dataset=tiles.zip --param object_name="magnetic tile"
    python -m tasks status JOB_ID | cancel JOB_ID | delete JOB_ID | wait JOB_ID [--timeout S] | list [--limit N]
    python -m tasks purge [--days D]

JOB_ID: the full id or its first characters (4 or more), as the page shows them.

Prints job records as JSON. Exit status: 0 succeeded or accepted, 1 failed or cancelled, 2 bad input.
"""

from __future__ import annotations

import argparse
import json
import sys

from engine.errors import UserInputError
from tasks import client


def _print(job: client.Job) -> int:
    print(json.dumps(job.to_dict(), indent=1))
    return 1 if job.status in (client.Status.FAILED, client.Status.CANCELLED) else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tasks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    submit = commands.add_parser("submit")
    submit.add_argument("tool", choices=sorted(client.TOOLS))
    submit.add_argument("files", nargs="*")
    submit.add_argument("--param", action="append", default=[], metavar="KEY=VALUE")
    submit.add_argument("--ref", action="append", default=[], metavar="FILE", help="anomaly: image of a good part")
    submit.add_argument("--input", action="append", default=[], metavar="ROLE=FILE",
                        help="a file for another input role, e.g. video=line.mp4 or dataset=set.zip")
    submit.add_argument("--wait", type=float, metavar="SECONDS", help="wait for the job to end")
    submit.add_argument("--name", help="what to call the job (shown beside its id)")
    for name in ("status", "cancel", "delete", "wait"):
        command = commands.add_parser(name)
        command.add_argument("job_id")
        if name == "wait":
            command.add_argument("--timeout", type=float)
    listing = commands.add_parser("list")
    listing.add_argument("--limit", type=int, default=20)
    purge = commands.add_parser("purge", help="delete finished jobs older than the retention period")
    purge.add_argument("--days", type=float, help="default: FEWSHOT_RETENTION_DAYS (30)")
    args = parser.parse_args(argv)
    try:
        if args.command == "submit":
            params = dict(item.split("=", 1) for item in args.param if "=" in item)
            files: dict[str, list[str]] = {"images": args.files, "references": args.ref}
            for item in args.input:
                role, _, path = item.partition("=")
                if not path:
                    raise UserInputError(f"--input {item!r}: write ROLE=FILE, e.g. video=line.mp4.")
                files.setdefault(role, []).append(path)
            job = client.submit(args.tool, params, files, name=args.name)
            return _print(client.wait(job.id, args.wait) if args.wait else job)
        if args.command == "purge":
            from tasks.retention import purge_expired

            removed = purge_expired(args.days)
            print(json.dumps({"removed": removed}))
            return 0
        if args.command == "list":
            print(json.dumps([job.to_dict() for job in client.list_jobs(args.limit)], indent=1))
            return 0
        if args.command == "delete":
            job, freed = client.delete(args.job_id)
            print(json.dumps({"deleted": job.id, "freed_bytes": freed}))
            return 0
        if args.command == "cancel":
            return _print(client.cancel(args.job_id))
        if args.command == "wait":
            return _print(client.wait(args.job_id, args.timeout))
        return _print(client.get(args.job_id))
    except (UserInputError, client.JobNotFound, client.QueueUnavailable) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
