"""Refuse a launch whose processes disagree about their rank; warn when a launcher started fewer
processes than it was asked for.

``accelerate launch --multi_gpu --num_processes 2`` on a machine where CUDA is not visible starts two
processes (WORLD_SIZE=2, RANK 0 and 1) that each fall back to a single-process run: both believe
they are rank 0 of 1, train the whole dataset and write to the same run folder. ``accelerate
launch --cpu --num_processes 2`` (without MPI) starts only one process and sets nothing that says
more were asked: :func:`warn_lost_processes` reads the request from the launcher's command line (the
parent process) or its config file. The launches that do what they say:

    accelerate launch --multi_gpu --num_processes N train.py ...            # N GPUs, one machine
    accelerate launch --multi_gpu --num_machines M --machine_rank R --num_processes N*M \\
        --main_process_ip HOST --main_process_port 29500 train.py ...       # M machines (run on each)
    ACCELERATE_USE_CPU=true OMP_NUM_THREADS=1 torchrun --standalone --nproc_per_node N train.py ...  # N CPU processes

A refused launch ends with our message and no traceback: the launcher (torch elastic, inside ``accelerate
launch --multi_gpu`` and ``torchrun``) raises ``ChildFailedError`` for any child that exits non-zero, and
Accelerate lets it through with its traceback. Nothing of ours runs in the launcher before it spawns the
children, so the refusing child ends the launcher first (:func:`end_launcher`), then exits 2.
"""

from __future__ import annotations

import os
import select
import signal
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from mushroom_id.engine.config import ConfigError

CPU_LAUNCH = "ACCELERATE_USE_CPU=true OMP_NUM_THREADS=1 torchrun --standalone --nproc_per_node N train.py ..."
GPU_LAUNCH = "accelerate launch --multi_gpu --num_processes N train.py ..."


class LaunchRefused(ConfigError):
    """:func:`check_launch`'s refusal: the launcher's processes and Accelerate's disagree."""


class LauncherGone(LaunchRefused):
    """The torch elastic launcher that started this process has already ended (a refusing peer stopped it):
    there is nothing left to run and nothing to say (the peer said it)."""


LAUNCHER_WORDS = ("accelerate", "torchrun", "torch.distributed.run", "torch.distributed.launch")


def _is_launcher(command_line: Sequence[str]) -> bool:
    return any(w in " ".join(command_line) for w in LAUNCHER_WORDS)


def check_launch(num_processes: int, process_index: int, env: Mapping[str, str] | None = None) -> None:
    """Raise :class:`LaunchRefused` when the launcher's WORLD_SIZE/RANK disagree with Accelerate's."""
    env = os.environ if env is None else env
    world = int(env.get("WORLD_SIZE") or 1)
    rank = env.get("RANK")
    if world <= 1:
        return
    if num_processes != world or (rank is not None and int(rank) != process_index):
        import torch

        raise LaunchRefused(
            f"the launcher started this process as rank {rank} of WORLD_SIZE={world}, but Accelerate runs it as "
            f"process {process_index} of {num_processes} (CUDA available: {torch.cuda.is_available()}): every "
            "process would train on all the data and write to the same run folder. Several GPUs: "
            f"`{GPU_LAUNCH}` on a machine where CUDA is visible; several CPU processes: `{CPU_LAUNCH}`."
        )


def check_gpu_launch(
    env: Mapping[str, str] | None = None, launcher: Sequence[str] | None = None, gpu: bool | None = None
) -> None:
    """Raise :class:`LaunchRefused` before any process group starts when ``accelerate launch --multi_gpu``
    started several processes where no GPU is visible: refused here, no process waits on a rendezvous
    that its peer's refusal would break (that peer's traceback would follow our message)."""
    env = os.environ if env is None else env
    world = int(env.get("WORLD_SIZE") or 1)
    if world <= 1 or str(env.get("ACCELERATE_USE_CPU", "")).lower() in ("1", "true", "yes"):
        return
    launcher = _parent_command_line() if launcher is None else launcher
    if "TORCHELASTIC_RUN_ID" in env and not _is_launcher(launcher):
        # a peer refused first and stopped the launcher: without this, this process would wait for ever on
        # a rendezvous with the peer that has gone
        raise LauncherGone("the launcher that started this process has ended")
    if "--multi_gpu" not in launcher or requested_processes(launcher) is None:
        return
    if gpu is None:
        import torch

        gpu = torch.accelerator.is_available()
    if not gpu:
        raise LaunchRefused(
            f"the launcher started this process as rank {env.get('RANK')} of WORLD_SIZE={world} with "
            "`--multi_gpu`, but no GPU is visible here (CUDA available: False): every process would train "
            f"alone on all the data and write to the same run folder. Several GPUs: `{GPU_LAUNCH}` on a "
            f"machine where CUDA is visible; several CPU processes: `{CPU_LAUNCH}`."
        )


def _option(args: Sequence[str], *names: str) -> str | None:
    """The value of ``--name V`` or ``--name=V`` among ``args``."""
    for i, arg in enumerate(args):
        for name in names:
            if arg == name and i + 1 < len(args):
                return args[i + 1]
            if arg.startswith(name + "="):
                return arg.split("=", 1)[1]
    return None


def requested_processes(launcher: Sequence[str]) -> int | None:
    """How many processes an ``accelerate launch`` command line asked for (``--num_processes``, else its
    ``--config_file`` or Accelerate's default config); None when ``launcher`` is not ``accelerate launch``."""
    words = list(launcher)
    cli = ("accelerate", "accelerate.commands.accelerate_cli")  # the console script, or python -m
    at = next((i for i, w in enumerate(words[:-1]) if words[i + 1] == "launch" and Path(w).name in cli), None)
    if at is not None:
        args = words[at + 2 :]
    elif "accelerate.commands.launch" in words:  # python -m accelerate.commands.launch
        args = words[words.index("accelerate.commands.launch") + 1 :]
    else:
        return None
    asked = _option(args, "--num_processes", "--num-processes")
    if asked is None:
        import yaml

        config_file = _option(args, "--config_file", "--config-file")
        if config_file is None:
            try:
                from accelerate.commands.config import default_config_file
            except ImportError:  # pragma: no cover - depends on the accelerate version
                return None
            config_file = default_config_file
        try:
            asked = (yaml.safe_load(Path(config_file).read_text()) or {}).get("num_processes")
        except (OSError, yaml.YAMLError, AttributeError):
            return None
    try:
        return int(asked) if asked is not None else None
    except ValueError:
        return None


def _parent_command_line() -> list[str]:
    try:
        raw = Path(f"/proc/{os.getppid()}/cmdline").read_bytes()
    except OSError:  # not Linux, or not allowed: nothing to check
        return []
    return [w.decode(errors="replace") for w in raw.split(b"\0") if w]


def lost_processes_warning(started: int, launcher: Sequence[str]) -> str | None:
    """The warning for a launcher that asked for more processes than were started, else None."""
    asked = requested_processes(launcher)
    if asked is None or asked <= started:
        return None
    return (
        f"WARNING: the launcher asked for {asked} processes but {started} started (`accelerate launch --cpu` "
        "starts one process unless MPI is set up): this run trains on one process. Several CPU processes: "
        f"`{CPU_LAUNCH}`; several GPUs: `{GPU_LAUNCH}`."
    )


def warn_lost_processes(env: Mapping[str, str] | None = None, launcher: Sequence[str] | None = None) -> str | None:
    """Print (stderr, once per process group: rank 0) and return :func:`lost_processes_warning` for this process."""
    env = os.environ if env is None else env
    if int(env.get("RANK") or 0) != 0:
        return None
    launcher = _parent_command_line() if launcher is None else launcher
    message = lost_processes_warning(int(env.get("WORLD_SIZE") or 1), launcher)
    if message:
        print(message, file=sys.stderr)
    return message


def end_launcher(message: str, env: Mapping[str, str] | None = None, wait_s: float = 30.0) -> bool:
    """Print ``message`` (stderr) and, under a torch elastic launcher, end that launcher (SIGKILL) before this
    process exits, so that it does not report the refusal as a crash with its own traceback. True when the
    launcher was ended.

    Every process of a refused launch refuses on its own (each believes it is alone). Local rank 0 prints and
    ends the launcher; the others wait (up to ``wait_s``) for it to go and stay silent, so the message is shown
    once; one that waits in vain prints its own and ends the launcher itself. The parent is held by a pidfd
    opened while it is still our parent, so a launcher that has already gone is never confused with whichever
    process inherits its pid. Elsewhere (plain ``python train.py``, no pidfd): the message only.
    """
    env = os.environ if env is None else env
    launcher = _launcher_pidfd(env)
    if launcher is None:
        print(message, file=sys.stderr, flush=True)
        return False
    try:
        first = int(env.get("LOCAL_RANK") or 0) == 0
        if not first and _ended(launcher, wait_s):
            return True  # local rank 0 said it and ended the launcher
        print(
            f"{message}\nThe launcher (pid {os.getppid()}) is stopped here so that it does not add its own traceback; "
            "your shell may say 'Killed' (exit status 137).",
            file=sys.stderr,
            flush=True,
        )
        try:
            signal.pidfd_send_signal(launcher, signal.SIGKILL)
        except ProcessLookupError:  # it ended meanwhile
            return True
        _ended(launcher, 10.0)  # gone before this process exits: it never sees a failed child
        return True
    finally:
        os.close(launcher)


def _launcher_pidfd(env: Mapping[str, str]) -> int | None:
    """A pidfd on this process's parent when the parent is a torch elastic launcher, else None."""
    if "TORCHELASTIC_RUN_ID" not in env or not hasattr(os, "pidfd_open"):
        return None
    parent = os.getppid()
    if parent <= 1 or not _is_launcher(_parent_command_line()):  # never a process that merely adopted us
        return None
    try:
        fd = os.pidfd_open(parent)
    except OSError:
        return None
    if os.getppid() != parent:  # the launcher went before the pidfd was opened: that pid may be another process
        os.close(fd)
        return None
    return fd


def _ended(pidfd: int, wait_s: float) -> bool:
    """Whether the process behind ``pidfd`` ends within ``wait_s`` seconds (a pidfd is readable once it has)."""
    return bool(select.select([pidfd], [], [], wait_s)[0])
