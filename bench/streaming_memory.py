"""Peak memory and speed of reading a training set: streamed (``data.streaming=true``) against loaded in memory.

    python bench/streaming_memory.py                          # jsonl files of 32 and 128 MiB
    python bench/streaming_memory.py --sizes 32 128 512 --rows-kib 2 --no-in-memory

For each size a jsonl file of GSM8K-shaped records (a question of ``--rows-kib`` KiB, a number as the answer) is
written to a temporary directory, then read in a fresh process per row of the table:

- ``stream``: ``QAData(streaming=True)``: the held-out sample drawn, then one pass over every training row of the
  stream (what a run reads in one epoch), through :mod:`rlvr.data.streaming` with its 1 MiB json chunks;
- ``stream, 10 MiB chunks``: the same with ``datasets``' default chunk size (why we set ours);
- ``in memory``: ``QAData`` as without streaming: every row parsed into a ``datasets.Dataset``.

``peak over base`` is the process's peak resident memory (``VmHWM``) minus its resident memory once the libraries
are loaded and a tiny file was read the same way (so the import of every library the reader uses is left out);
``rows/s`` counts training rows. Linux only (``/proc/self/status``).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

CHILD = textwrap.dedent("""
    import json, sys, time, psutil
    from pathlib import Path
    import rlvr.data.streaming as streaming
    from rlvr.data import PromptTemplate, QAData

    mode, path, records, tiny = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    if mode == "stream-10mib":
        streaming.JSON_CHUNK = 10 << 20

    def read(file, records):
        data = QAData(path=file, streaming=mode != "memory", test_size=2)
        splits = data.load(PromptTemplate())
        if mode == "memory":
            return len(splits.train)
        for row in splits.train.reader().rows():  # one pass: every record but the 2 held out
            if row["stream_index"] + 1 == records - 2:
                return records - 2

    read(tiny, 5)
    base = psutil.Process().memory_info().rss
    start = time.perf_counter()
    rows = read(path, records)
    seconds = time.perf_counter() - start
    status = Path("/proc/self/status").read_text().splitlines()
    peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) * 1024
    print(json.dumps({"rows": rows, "seconds": seconds, "peak_over_base": (peak - base) / 2**20,
                      "base": base / 2**20}))
""")

MODES = {"stream": "stream", "stream-10mib": "stream, 10 MiB chunks", "memory": "in memory"}


def write(path: Path, mib: int, row_kib: float) -> int:
    text = "x" * int(row_kib * 1024)
    n = 0
    with path.open("w") as f:
        while f.tell() < mib * 2**20:
            f.write(json.dumps({"question": f"What is {n} + 1? {text}", "answer": str(n + 1)}) + "\n")
            n += 1
    return n


def measure(mode: str, path: Path, records: int, tiny: Path) -> dict:
    proc = subprocess.run([sys.executable, "-c", CHILD, mode, str(path), str(records), str(tiny)],
                          capture_output=True, text=True, timeout=3600)
    if proc.returncode:
        raise SystemExit(proc.stderr[-3000:])
    return json.loads(proc.stdout.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 128], help="file sizes in MiB")
    parser.add_argument("--rows-kib", type=float, default=2.0, help="size of each record's question in KiB")
    parser.add_argument("--no-in-memory", action="store_true", help="skip loading the files in memory")
    args = parser.parse_args()
    modes = [m for m in MODES if not (args.no_in_memory and m == "memory")]
    print("| file MiB | records | reader | peak over base MiB | s | rows/s |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        tiny = Path(tmp) / "tiny.jsonl"
        tiny.write_text("".join(json.dumps({"question": f"q{i}", "answer": str(i)}) + "\n" for i in range(5)))
        for mib in args.sizes:
            path = Path(tmp) / f"{mib}.jsonl"
            records = write(path, mib, args.rows_kib)
            for mode in modes:
                m = measure(mode, path, records, tiny)
                print(f"| {mib} | {records} | {MODES[mode]} | {m['peak_over_base']:.0f} | {m['seconds']:.1f} | "
                      f"{m['rows'] / m['seconds']:.0f} |", flush=True)
            path.unlink()


if __name__ == "__main__":
    main()
