"""Refuse a launch whose processes disagree about their rank.

``accelerate launch --multi_gpu --num_processes 2`` on a machine where CUDA is not visible starts two
processes (WORLD_SIZE=2, RANK 0 and 1) that each fall back to a single-process run: both believe
they are rank 0 of 1, train the whole dataset and write to the same run folder. ``accelerate
launch --cpu --num_processes 2`` (without MPI) starts only one process and cannot be detected from
inside; the README says so. The launches that do what they say:

    accelerate launch --multi_gpu --num_processes N train.py ...            # N GPUs, one machine
    accelerate launch --multi_gpu --num_machines M --machine_rank R --num_processes N*M \\
        --main_process_ip HOST --main_process_port 29500 train.py ...       # M machines (run on each)
    ACCELERATE_USE_CPU=true OMP_NUM_THREADS=1 torchrun --standalone --nproc_per_node N train.py ...  # N CPU processes
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from mushroom_id.engine.config import ConfigError

CPU_LAUNCH = "ACCELERATE_USE_CPU=true OMP_NUM_THREADS=1 torchrun --standalone --nproc_per_node N train.py ..."
GPU_LAUNCH = "accelerate launch --multi_gpu --num_processes N train.py ..."


def check_launch(num_processes: int, process_index: int, env: Mapping[str, str] | None = None) -> None:
    """Raise :class:`ConfigError` when the launcher's WORLD_SIZE/RANK disagree with Accelerate's."""
    env = os.environ if env is None else env
    world = int(env.get("WORLD_SIZE") or 1)
    rank = env.get("RANK")
    if world <= 1:
        return
    if num_processes != world or (rank is not None and int(rank) != process_index):
        import torch

        raise ConfigError(
            f"the launcher started this process as rank {rank} of WORLD_SIZE={world}, but Accelerate runs it as "
            f"process {process_index} of {num_processes} (CUDA available: {torch.cuda.is_available()}): every "
            "process would train on all the data and write to the same run folder. Several GPUs: "
            f"`{GPU_LAUNCH}` on a machine where CUDA is visible; several CPU processes: `{CPU_LAUNCH}`."
        )
