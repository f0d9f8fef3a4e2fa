"""Suite-wide settings: one intra-op thread per test process.

The tests use small tensors, and the suite shares the machine with the subprocesses it starts (panel serve,
papermill kernels, Dask workers); torch's default of one thread per core oversubscribes the CPU and was
measured up to 15x slower on a busy 2-core machine.
"""
import torch

torch.set_num_threads(1)
