"""Training-time ideas on 2-D toy sets, numbers for issue 16:

    .venv/bin/python benchmarks/paths_distill.py [moons checkerboard]

1. One-step distillation: MLP velocity teacher (linear path) → one reflow round (RK4 couplings) → distilled with the
   pseudo-Huber loss into a same-size and a smaller (SlimFlow-style) one-step student; sliced W2 to held-out data
   of the 1-step students vs the teacher / reflowed teacher at 1, 2, 4 Euler steps.
2. Solver-aware regularisation: fine-tune the teacher with and without the Dormand–Prince error regulariser
   (Pal et al. 2021) for the same steps; dopri5 NFE at rtol = atol = 1e-3 and sliced W2 of its samples.
The floor is SW2 between two independent data draws.
"""
import copy
import json
import sys
import time

import torch

from workbench import solvers
from workbench.metrics import sliced_wasserstein
from workbench.models.predictor import Predictor, build_network
from workbench.training import InterpolantLoss
from workbench.training.distill import DistillConfig, distill, one_step
from workbench.training.recipes import build, generate, merge_spec
from workbench.training.reflow import PairedData, generate_pairs
from workbench.training.regularizers import SolverErrorRegularizer
from workbench.training.trainer import TrainConfig, Trainer


def finetune(pred: Predictor, data, steps: int, reg_weight: float, seed: int = 0) -> Predictor:
    """Adam on the velocity loss (+ reg_weight × the DP5 error regulariser on 32 noise samples)."""
    new = Predictor(copy.deepcopy(pred.network).requires_grad_(True), pred.interpolant, pred.prediction, pred.architecture)
    loss_fn = InterpolantLoss(pred.interpolant, "velocity")
    reg = SolverErrorRegularizer(weight=reg_weight, rtol=1e-3, atol=1e-3)
    opt = torch.optim.Adam(new.network.parameters(), lr=5e-4)
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        x1 = data.sample(256, g).float()
        loss = loss_fn(new.network, x1, g)
        if reg_weight > 0:
            loss = loss + reg(new.network, torch.randn(32, 2, generator=g))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return new


def dopri5_stats(pred: Predictor, z: torch.Tensor, sw) -> dict:
    res = solvers.get("dopri5", rtol=1e-3, atol=1e-3).sample(pred.field(), z.float(), 2000)
    return {"nfe": res.nfe, "sw2": sw(res.x)}


def run(dataset: str, steps: int = 1500, reflow_steps: int = 1000, distill_steps: int = 1500, reg_steps: int = 300,
        n_eval: int = 2000):
    torch.set_num_threads(1)
    spec = merge_spec({"dataset": dataset, "architecture_params": {"width": 128},
                       "train": {"steps": steps, "progress": False}})
    pred, ds, cfg = build(spec)
    teacher = Trainer(pred, ds, cfg).train().ema_predictor()
    x0, x1 = generate_pairs(teacher, 4000, "rk4", 32, torch.Generator().manual_seed(0))
    ref_net = Predictor(copy.deepcopy(teacher.network).requires_grad_(True), teacher.interpolant, "velocity", teacher.architecture)
    rcfg = TrainConfig.from_dict(dict(spec["train"], steps=reflow_steps)).validate()
    ref = Trainer(ref_net, PairedData(x0.float(), x1.float()), rcfg).train().ema_predictor()
    rx0, rx1 = generate_pairs(ref, 4000, "rk4", 32, torch.Generator().manual_seed(1))
    data = ds.sample(n_eval, torch.Generator().manual_seed(123)).double()
    floor = float(sliced_wasserstein(data, ds.sample(n_eval, torch.Generator().manual_seed(7)).double(),
                                     generator=torch.Generator().manual_seed(1)))
    sw = lambda x: float(sliced_wasserstein(x.detach().double(), data, generator=torch.Generator().manual_seed(1)))
    out = {"dataset": dataset, "sw2_floor": floor}
    for nfe in (1, 2, 4):
        out[f"sw2_teacher_euler{nfe}"] = sw(generate(teacher, n_eval, "euler", nfe, seed=5))
        out[f"sw2_reflow_euler{nfe}"] = sw(generate(ref, n_eval, "euler", nfe, seed=5))
    z = torch.randn(n_eval, 2, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    for name, net in (("student", copy.deepcopy(ref.network)),
                      ("small_student", build_network("mlp", shape=[2], width=32))):
        net = net.double().requires_grad_(True)
        distill(net, rx0, rx1, DistillConfig(steps=distill_steps, batch_size=256, lr=1e-3, loss="pseudo_huber"))
        with torch.no_grad():
            out[f"sw2_{name}_1step"] = sw(one_step(net, z))
        out[f"{name}_params"] = sum(p.numel() for p in net.parameters())
    for name, w in (("plain", 0.0), ("solver_reg", 0.1)):
        tuned = finetune(teacher, ds, reg_steps, w)
        for k, v in dopri5_stats(tuned, z, sw).items():
            out[f"dopri5_{name}_{k}"] = v
    return out


if __name__ == "__main__":
    names = sys.argv[1:] or ["moons", "checkerboard"]
    t0 = time.time()
    for n in names:
        print(json.dumps(run(n)), flush=True)
    print(f"wall {time.time() - t0:.0f} s")
