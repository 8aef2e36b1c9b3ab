"""The measured edit-quality table of README: `featurechanger evaluate` for every model, vector
set and output mode, on a separately generated evaluation set with its counterfactual twin.

    FEATURECHANGER_HOME=... flock /tmp/fc-heavy.lock .venv/bin/python bench/edit_quality.py \\
        --run dcae=1 --run pgae=2 --run pca=3 --data /work/fc-data/shards-eval16k \\
        --twin /work/fc-data/eval16k-twin --out results.jsonl

Each run needs its vector sets first (`featurechanger vectors --run RUN` and `... --keep
Male`), the classifiers of its training shards (`featurechanger classifier train`, and with
`--decorrelate Eyeglasses` the judge of the removals; `--extra '--classifier FILE'` judges
every row with one classifier instead) and, for the blended removals, their Eyeglasses
localiser and refiner (`featurechanger localiser train --attribute Eyeglasses`,
`featurechanger refiner train --run RUN --attribute Eyeglasses`).
Every evaluation is one `featurechanger evaluate ... --json` command, printed before it runs, so
each row can be repeated alone. The table (markdown) is printed at the end.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

import click

OUTPUTS = ("blend", "residual", "decoded")
ADDED = ("Smiling", "Blond_Hair")


def evaluate(arguments: list[str], threads: int) -> dict:
    command = [str(Path(sys.executable).with_name("featurechanger")), "evaluate", *arguments,
               "--split", "all", "--json"]
    print("$ " + shlex.join(command), file=sys.stderr, flush=True)
    start = time.perf_counter()
    environment = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    result = subprocess.run(command, check=True, capture_output=True, text=True,
                            env=environment)
    report = json.loads(result.stdout)
    report["seconds"] = round(time.perf_counter() - start, 1)
    return report


def planned_rows(runs: tuple[str, ...], data: str, twin: str, extra: list[str],
                 add_limit: int, outputs: tuple[str, ...] = OUTPUTS,
                 additions: bool = True, removals: bool = True) -> list[dict]:
    """One row per evaluation: with `removals`, every model x vector set x output (of
    `outputs`) removing glasses (against the twin), then, with `additions`, adding each of
    ADDED with the default blend and both vector sets (at most `add_limit` faces)."""
    rows = []
    for name, run_id in (item.split("=", 1) for item in runs):
        base = ["--run", run_id, "--data", data, *extra]
        for keep in ((), ("--keep", "Male")):
            for output in outputs if removals else ():
                rows.append({"model": name, "vectors": "keep Male" if keep else "plain",
                             "output": output, "edit": "-Eyeglasses",
                             "arguments": [*base, "--remove", "Eyeglasses", *keep, "--output",
                                           output, "--twin", twin]})
        for attribute in ADDED if additions else ():
            for keep in ((), ("--keep", "Male")):
                rows.append({"model": name, "vectors": "keep Male" if keep else "plain",
                             "output": "blend", "edit": f"+{attribute}",
                             "arguments": [*base, "--add", attribute, *keep, "--limit",
                                           str(add_limit)]})
    return rows


def _cell(report: dict, key: str, percent: bool = True) -> str:
    if key not in report:
        return "-"
    low, high = report[f"{key}_ci"]
    if percent:
        return f"{100 * report[key]:.1f} [{100 * low:.1f}, {100 * high:.1f}]"
    return f"{report[key]:.2f}"


def table(rows: list[dict]) -> str:
    header = ("| model | vectors | output | edit | n | success % | others kept % | Male kept % "
              "| recon. others kept % | recon. Male kept % | PSNR whole: edit / do-nothing / "
              "blurred (dB) | PSNR eye band: edit / do-nothing / blurred (dB) "
              "| twin (a perfect edit): success / others / Male kept % |")
    lines = [header, "|" + "---|" * (header.count("|") - 1)]
    for row in rows:
        r = row["report"]
        whole = " / ".join(_cell(r, k, False) for k in ("truth_psnr", "do_nothing_psnr",
                                                         "blurred_psnr"))
        band = " / ".join(_cell(r, k, False) for k in ("band_truth_psnr", "band_do_nothing_psnr",
                                                        "band_blurred_psnr"))
        twin = " / ".join(f"{100 * r[k]:.1f}" if k in r else "-" for k in (
            "twin_success", "twin_preserved", "twin_male_preserved"))
        lines.append(f"| {row['model']} | {row['vectors']} | {row['output']} | {row['edit']} "
                     f"| {r['n']} | {_cell(r, 'success')} | {_cell(r, 'preserved')} "
                     f"| {_cell(r, 'male_preserved')} | {_cell(r, 'reconstruction_preserved')} "
                     f"| {_cell(r, 'reconstruction_male_preserved')} | {whole} | {band} "
                     f"| {twin} |")
    return "\n".join(lines)


@click.command()
@click.option("--run", "runs", multiple=True, required=True, metavar="NAME=RUN",
              help="A model's name in the table and its run id (repeatable).")
@click.option("--data", required=True, help="Shard set of the evaluation faces.")
@click.option("--twin", required=True, help="Their counterfactual twin (Eyeglasses=0).")
@click.option("--out", type=click.Path(dir_okay=False), required=True,
              help="JSON lines file: one evaluation report per row.")
@click.option("--extra", default="", help="Extra evaluate options, e.g. '--strength 1.5'.")
@click.option("--add-limit", type=int, default=2000, show_default=True,
              help="Faces evaluated for each added attribute.")
@click.option("--jobs", type=int, default=2, show_default=True,
              help="Evaluations run at once, each on one thread.")
@click.option("--output", "outputs", multiple=True, type=click.Choice(OUTPUTS),
              default=OUTPUTS, show_default=True,
              help="Output modes of the removal rows (repeatable): rerun only the rows a "
                   "change touches, e.g. --output blend --no-additions after a refiner change.")
@click.option("--additions/--no-additions", default=True, show_default=True,
              help="Also the rows adding Smiling and Blond_Hair.")
@click.option("--removals/--no-removals", default=True, show_default=True,
              help="The rows removing Eyeglasses (--no-removals: only the additions, e.g. "
                   "after a change to the additions' default amount).")
def main(runs: tuple[str, ...], data: str, twin: str, out: str, extra: str, add_limit: int,
         jobs: int, outputs: tuple[str, ...], additions: bool, removals: bool) -> None:
    rows = planned_rows(runs, data, twin, shlex.split(extra), add_limit, outputs, additions,
                        removals)
    with ThreadPoolExecutor(max_workers=jobs) as pool, open(out, "a") as results:
        futures = {pool.submit(evaluate, row["arguments"], 1): row for row in rows}
        for future in as_completed(futures):
            row = futures[future]
            try:
                row["report"] = future.result()
            except subprocess.CalledProcessError as error:  # the other rows still count
                print(f"FAILED: {shlex.join(error.cmd)}\n{error.stderr}", file=sys.stderr)
                continue
            results.write(json.dumps(row) + "\n")
            results.flush()
    print(table([row for row in rows if "report" in row]))


if __name__ == "__main__":
    main()
