"""Which batch job holds each GPU and MIG instance, as an `hpc_job` label: dcgm-exporter's HPC job
mapping (--hpc-job-mapping-dir).

The scheduler's prolog writes a file per GPU into one directory, named by the GPU's index (`0`) or
by a MIG instance's `<GPU index>.<GPU instance id>` (`2.3`), holding job ids one per line; its
epilog removes or empties the file. The label is `hpc_job`, not `job`, which Prometheus gives every
target. dcgm-exporter repeats a GPU's series once per job a file names; here the first job is the
label, so each GPU keeps one series per metric. The directory is read again every collection
cycle, so files that appear, change or disappear take effect at the next one.
"""

from __future__ import annotations

import logging
import os
import re

from .collector import ErrorCounts

log = logging.getLogger(__name__)

FIELD = "hpc_job_mapping"  # in gpuobs_exporter_collection_errors_total
_NAME = re.compile(r"^(\d+)(?:\.(\d+))?$")
_MAX_READ = 4096  # bytes of a file read: the first job id is all that is used

Labels = tuple[tuple[str, str], ...]


def first_job(text: str) -> str | None:
    return next((line.strip() for line in text.splitlines() if line.strip()), None)


class JobMapping:
    """The jobs the files in `directory` named at the latest refresh."""

    def __init__(self, directory: str):
        self.directory = directory
        self._jobs: dict[tuple[int, int | None], str] = {}
        self._failing = False

    def refresh(self, errors: ErrorCounts) -> None:
        problems: list[str] = []
        self._jobs = self._read(problems)
        for _ in problems:
            errors.count(None, FIELD)
        if problems and not self._failing:  # logged once until a refresh succeeds
            log.warning("HPC job mapping: %s", "; ".join(problems))
        self._failing = bool(problems)

    def _read(self, problems: list[str]) -> dict[tuple[int, int | None], str]:
        try:
            names = os.listdir(self.directory)
        except OSError as exc:  # the directory gone or unreadable: no job is known
            problems.append(f"cannot list {self.directory}: {exc.strerror}")
            return {}
        jobs: dict[tuple[int, int | None], str] = {}
        for name in names:
            found = _NAME.match(name)
            if not found:
                continue
            path = os.path.join(self.directory, name)
            try:
                with open(path, encoding="utf-8", errors="replace") as file:
                    job = first_job(file.read(_MAX_READ))
            except (FileNotFoundError, IsADirectoryError):  # removed since the listing; not a file
                continue
            except OSError as exc:  # a file we may not read
                problems.append(f"cannot read {path}: {exc.strerror}")
                continue
            if job is not None:
                jobs[int(found[1]), None if found[2] is None else int(found[2])] = job
        return jobs

    def gpu(self, index: int) -> Labels:
        job = self._jobs.get((index, None))
        return (("hpc_job", job),) if job is not None else ()

    def instance(self, index: int, gi_id: int) -> Labels:
        job = self._jobs.get((index, gi_id))
        return (("hpc_job", job),) if job is not None else ()
