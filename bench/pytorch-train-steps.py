#!/usr/bin/env python3
"""Times training steps of the PyTorch reference net (the seed recipe's own Net class) on
random normalised 28x28 inputs, for bench/train-throughput.ts. Prints one JSON object."""
import argparse, json, os, sys, time

import torch
import torch.nn.functional as F
import torch.optim as optim

p = argparse.ArgumentParser()
p.add_argument("--reference", default=os.path.join(os.path.dirname(__file__), "../../shared/reference"))
p.add_argument("--steps", type=int, default=30)
p.add_argument("--warmup", type=int, default=5)
p.add_argument("--batch-size", type=int, default=128)
p.add_argument("--threads", type=int, default=2)
a = p.parse_args()

sys.path.insert(0, os.path.abspath(a.reference))
from pytorch_seed_recipe import Net  # noqa: E402  (the reference's exact network)

torch.set_num_threads(a.threads)
torch.manual_seed(1)
model = Net()
model.train()
opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
x = torch.randn(a.batch_size, 1, 28, 28)
y = torch.randint(0, 10, (a.batch_size,))


def step():
    opt.zero_grad()
    loss = F.nll_loss(model(x), y)
    loss.backward()
    opt.step()
    return loss.item()


for _ in range(a.warmup):
    step()
times = []
cpu0, wall0 = time.process_time(), time.perf_counter()
for _ in range(a.steps):
    t = time.perf_counter()
    step()
    times.append(time.perf_counter() - t)
wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
times.sort()
print(json.dumps({
    "torch": torch.__version__, "threads": torch.get_num_threads(), "batchSize": a.batch_size, "steps": a.steps,
    "msPerStep": 1000 * wall / a.steps, "medianMsPerStep": 1000 * times[len(times) // 2], "bestMsPerStep": 1000 * times[0],
    "cpuMsPerStep": 1000 * cpu / a.steps,
}))
