"""Writing a fleet's output folder: a kill at any step leaves the old or the new tree, leftovers are
cleaned by the next run, symlinks are written through, refusals and concurrent runs are one line."""

import errno
import itertools
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from conftest import MINIMAL_SPEC, ROOT
from gpuobs import output
from gpuobs.cli import main
from gpuobs.errors import OutputError
from gpuobs.output import write_tree

OLD = {"keep.yml": "old\n", "gone/old.yml": "old\n"}
NEW = {"keep.yml": "new\n", "sub/deep/new.json": "{}\n", "sub/other.yml": "x: 1\n"}
UNWRITABLE = {"a": "x\n", "a/b": "y\n"}  # `a` is a file, so nothing can go under it


def tree(folder: Path) -> dict[str, str] | None:
    """The files under `folder`, or None when nothing is there."""
    if not folder.is_dir():
        return None
    return {p.relative_to(folder).as_posix(): p.read_text() for p in sorted(folder.rglob("*")) if p.is_file()}


def is_step(frame, event, arg) -> bool:
    """A point write_tree can be killed at: any call into the os or fcntl module (every mkdir,
    write's fsync, rename, unlink, lock), and entering or leaving any function of gpuobs/output.py
    (the renameat2 exchange among them)."""
    if event == "c_call":
        return getattr(arg, "__module__", None) in ("posix", "fcntl")
    return event in ("call", "return") and frame.f_code.co_filename == output.__file__


def killed_at(step: int, target: Path, files: dict[str, str]) -> bool:
    """Run write_tree in a forked child that SIGKILLs itself at its `step`-th step; False when the
    child finished first (there are fewer steps)."""
    pid = os.fork()
    if pid == 0:
        steps = itertools.count()

        def profile(frame, event, arg):
            if is_step(frame, event, arg) and next(steps) == step:
                os.kill(os.getpid(), signal.SIGKILL)

        code = 1
        sys.setprofile(profile)
        try:
            write_tree(target, files)
            code = 0
        finally:
            sys.setprofile(None)
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) or os.waitstatus_to_exitcode(status) == 0, "write_tree failed in the child"
    return os.WIFSIGNALED(status)


def exchange_works(folder: Path) -> bool:
    a, b = folder / "probe-a", folder / "probe-b"
    a.mkdir()
    b.mkdir()
    return output._exchange(a, b)


def kill_everywhere(tmp_path: Path, old: dict | None, recoverable) -> set:
    """Kill write_tree(NEW) over `old` at every step in turn. After each kill `recoverable(folder)`
    names the state and the tree the fleet folder must hold from then on: a run that fails must
    leave that tree, and a run that succeeds must leave NEW and nothing else. Returns the states."""
    seen = set()
    for step in itertools.count():
        folder = tmp_path / str(step)
        folder.mkdir()
        if old is not None:
            write_tree(folder / "fleet", old)
        if not killed_at(step, folder / "fleet", NEW):
            break
        state, kept = recoverable(folder)
        seen.add(state)
        with pytest.raises(OutputError):
            write_tree(folder / "fleet", UNWRITABLE)
        assert tree(folder / "fleet") == kept, step
        write_tree(folder / "fleet", NEW)
        assert tree(folder / "fleet") == NEW, step
        assert os.listdir(folder) == ["fleet"], f"leftovers after the run that followed a kill at step {step}"
    assert step > 20, "the hook saw too few steps to mean anything"
    return seen


@pytest.mark.parametrize("old", [OLD, None], ids=["replace", "first-write"])
def test_a_kill_at_any_step_leaves_exactly_the_old_or_the_new_tree(tmp_path, old):
    if not exchange_works(tmp_path):
        pytest.skip("this filesystem cannot exchange two paths (renameat2 RENAME_EXCHANGE)")

    def old_or_new(folder):
        state = tree(folder / "fleet")
        assert state in (old, NEW)
        return "new" if state == NEW else "old", state

    assert kill_everywhere(tmp_path, old, old_or_new) == {"old", "new"}


def test_without_exchange_a_kill_leaves_the_old_tree_recoverable(tmp_path, monkeypatch):
    monkeypatch.setattr(output, "_exchange", lambda a, b: False)  # NFS, macOS, kernels before 3.15

    def recoverable(folder):
        state = tree(folder / "fleet")
        if state is not None:
            assert state in (OLD, NEW)
            return "new" if state == NEW else "old", state
        aside = [p for p in folder.iterdir() if p.name.startswith(".fleet.old-")]
        assert len(aside) == 1 and tree(aside[0]) == OLD
        return "moved aside", OLD  # the next run puts it back, even one that fails

    assert kill_everywhere(tmp_path, OLD, recoverable) == {"old", "moved aside", "new"}


def test_files_and_folders_are_synced_before_the_swap_and_the_parent_after(tmp_path, monkeypatch):
    target = tmp_path / "fleet"
    write_tree(target, OLD)
    synced, swaps = [], []
    real_fsync, real_exchange = os.fsync, output._exchange

    def fsync(fd):
        synced.append(Path(os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def exchange(a, b):
        swaps.append(len(synced))
        return real_exchange(a, b)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(output, "_exchange", exchange)
    write_tree(target, NEW)
    staging = tmp_path / f".fleet.new-{os.getpid()}"
    staged = {staging / rel for rel in NEW} | {staging, staging / "sub", staging / "sub" / "deep"}
    assert staged <= set(synced[:swaps[0]])
    assert tmp_path in synced[swaps[0]:]


def test_a_symlinked_fleet_folder_is_written_through(tmp_path):
    real = tmp_path / "deploy" / "fleet"
    write_tree(real, OLD)
    link = tmp_path / "out" / "fleet"
    link.parent.mkdir()
    link.symlink_to(Path("..") / "deploy" / "fleet")
    write_tree(link, NEW)
    assert link.is_symlink() and os.readlink(link) == os.path.join("..", "deploy", "fleet")
    assert tree(real) == NEW
    assert os.listdir(link.parent) == ["fleet"] and os.listdir(real.parent) == ["fleet"]


def write_spec(folder: Path, spec: dict) -> Path:
    path = folder / "alpha.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


@pytest.fixture
def generated(tmp_path):
    """A spec whose output is already under out/alpha, then changed so the next run rewrites it."""
    spec = write_spec(tmp_path, MINIMAL_SPEC)
    out = tmp_path / "out"
    assert CliRunner().invoke(main, ["generate", str(spec), "-o", str(out)]).exit_code == 0
    write_spec(tmp_path, {**MINIMAL_SPEC, "prometheus": {"scrape_interval": "30s"}})
    return spec, out, tree(out / "alpha")


def refusing(function, code: int, after: int = 0):
    """`function` that raises OSError(`code`) from its call number `after` on, as a read-only, full or
    forbidden filesystem does (chmod cannot simulate it here: tests may run as root)."""
    calls = itertools.count()

    def refuse(path_or_fd, *args, **kwargs):
        if next(calls) >= after:
            raise OSError(code, os.strerror(code), None if isinstance(path_or_fd, int) else str(path_or_fd))
        return function(path_or_fd, *args, **kwargs)
    return refuse


@pytest.mark.parametrize("name, code, after", [("mkdir", errno.EROFS, 0), ("fsync", errno.ENOSPC, 2),
                                               ("open", errno.EACCES, 0)], ids=["read-only", "full", "forbidden"])
def test_a_refusing_filesystem_is_one_line_with_exit_1_and_the_old_output_stays(generated, monkeypatch,
                                                                                  name, code, after):
    spec, out, before = generated
    monkeypatch.setattr(os, name, refusing(getattr(os, name), code, after))
    result = CliRunner().invoke(main, ["generate", str(spec), "-o", str(out)])
    monkeypatch.undo()
    assert result.exit_code == 1
    assert result.stderr.startswith(f"{out / 'alpha'}: cannot write the generated output: ")
    assert result.stderr.endswith(f"{os.strerror(code)}\n") and result.stderr.count("\n") == 1
    assert tree(out / "alpha") == before
    assert os.listdir(out) == ["alpha"]


def test_a_failure_is_an_output_error_naming_the_path(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "mkdir", refusing(os.mkdir, errno.EROFS))
    with pytest.raises(OutputError, match=r"fleet: cannot write the generated output: .*\.fleet\.new-\d+: "
                                          "Read-only file system"):
        write_tree(tmp_path / "fleet", NEW)


def test_a_second_run_on_the_same_output_fails_with_one_line_and_the_first_is_kept(generated):
    spec, out, before = generated
    command = [sys.executable, "-m", "gpuobs", "generate", str(spec), "-o", str(out)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with output.locked(out):
        second = subprocess.run(command, capture_output=True, text=True, env=env)
    assert second.returncode == 1
    assert second.stderr == f"{out}: another gpuobs run is writing here; run again when it ends\n"
    assert tree(out / "alpha") == before
    assert subprocess.run(command, capture_output=True, env=env).returncode == 0
    assert tree(out / "alpha") != before and os.listdir(out) == ["alpha"]
