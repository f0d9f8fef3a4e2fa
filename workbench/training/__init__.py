"""Training: interpolant losses, time sampling, couplings, the trainer, and reflow."""
from .time_sampling import TIME_SAMPLERS, LogitNormalTime, TimeSampler, UniformTime, UShapedTime, get_time_sampler
from .losses import InterpolantLoss
from .coupling import COUPLINGS, Coupling, Independent, MinibatchOT, get_coupling
from .trainer import TrainConfig, Trainer
from .reflow import PairedData, ReflowResult, generate_pairs, reflow

__all__ = ["TIME_SAMPLERS", "TimeSampler", "UniformTime", "LogitNormalTime", "UShapedTime", "get_time_sampler",
           "InterpolantLoss", "COUPLINGS", "Coupling", "Independent", "MinibatchOT", "get_coupling",
           "TrainConfig", "Trainer", "PairedData", "ReflowResult", "generate_pairs", "reflow"]
