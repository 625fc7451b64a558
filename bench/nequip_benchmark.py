"""Python nequip 0.6.2 reference timings for `nequip benchmark CONFIG` (nequip-rs).

Mirrors nequip/scripts/benchmark.py (nequip 0.6.2) and measures exactly what
nequip-plugins/src/cli/benchmark_cmd.rs measures: the model built from the same YAML with
`model_from_config(config, initialize=True, dataset=<the whole dataset>)`, the first `--n-data`
frames batched into one call, `--warmup` untimed then `--repeat` individually timed calls,
min/median/mean reported (structures/s and atom-steps/s from the min):

* forward:    the model in eval mode (energies and forces, no graph kept), eager PyTorch;
* train step: model in train mode, force MSE against the frames' `forces`, `backward()`
              through the forces (second derivatives), gradients zeroed in place each step
              (no optimizer update);
* forward (TorchScript), with --compile: as nequip-benchmark times it (e3nn `script`, frozen).

Not part of the project (which never needs Python). Set up outside the repository:
    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install \
        torch==2.13.0 nequip==0.6.2 e3nn==0.5.9 ase "numpy<2.4"
    /tmp/venv/bin/python -W ignore bench/nequip_benchmark.py configs/minimal.yaml --threads 1
numpy < 2.4: numpy 2.4 removed `np.in1d`, which nequip 0.6.2's dataset statistics call.
The processed dataset is written under --root (default: a folder in the temp directory), not
the config's `root`.
"""
import argparse
import os
import statistics
import sys
import tempfile
import time

# torch >= 2.6 loads with weights_only=True; nequip 0.6.2 pickles its processed dataset (our
# own cache under --root) with torch.save, which then fails to load on the second run.
os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")

import torch  # noqa: E402

from nequip.data import AtomicData, AtomicDataDict, dataset_from_config
from nequip.utils.torch_geometric import Batch
from nequip.model import model_from_config
from nequip.scripts.train import default_config
from nequip.utils import Config
from nequip.utils._global_options import _set_global_options


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("config", help="the training config (.yaml)")
    p.add_argument("--n-data", type=int, default=1, help="number of frames (the first ones), batched")
    p.add_argument("--warmup", type=int, default=5, help="untimed calls before timing")
    p.add_argument("-n", "--repeat", type=int, default=30, help="timed calls")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    p.add_argument("--device", type=str, default=None, help="cpu, cuda, cuda:N")
    p.add_argument("--model-dtype", choices=["float32", "float64"], default=None)
    p.add_argument("--no-train", action="store_true", help="only the eval-mode forward")
    p.add_argument("--compile", action="store_true", help="also time the TorchScript forward (as nequip-benchmark)")
    p.add_argument("--root", type=str, default=os.path.join(tempfile.gettempdir(), "nequip-benchmark-py"))
    return p.parse_args(argv)


def time_calls(warmup, repeat, f):
    for _ in range(warmup):
        f()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        f()
        times.append(time.perf_counter() - t0)
    return min(times), statistics.median(times), statistics.fmean(times)


def line(name, st, n_data, n_atoms):
    mn, med, mean = st
    print(
        f"{name:<11} min {mn * 1e3:>9.3f} ms  median {med * 1e3:>9.3f} ms  mean {mean * 1e3:>9.3f} ms  "
        f"| {n_data / mn:>9.1f} structures/s  {n_atoms / mn:>10.0f} atom-steps/s"
    )


def main(argv=None):
    a = parse_args(argv)
    if a.n_data < 1 or a.repeat < 1:
        sys.exit("--n-data and --repeat must be at least 1")
    if a.threads is not None:
        torch.set_num_threads(a.threads)
    config = Config.from_file(a.config, defaults=default_config)
    config["root"] = a.root
    if a.model_dtype is not None:
        config["model_dtype"] = a.model_dtype
    device = torch.device(a.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    _set_global_options(config)

    t0 = time.perf_counter()
    dataset = dataset_from_config(config, prefix="dataset")
    print(f"loaded dataset of {len(dataset)} frames in {time.perf_counter() - t0:.3f} s")
    if a.n_data > len(dataset):
        sys.exit(f"--n-data {a.n_data} but the dataset has only {len(dataset)} frames")

    t0 = time.perf_counter()
    model = model_from_config(config, initialize=True, dataset=dataset, deploy=False).to(device)
    print(f"built model in {time.perf_counter() - t0:.3f} s")

    frames = [dataset[i] for i in range(a.n_data)]
    n_atoms = sum(int(f.num_nodes) for f in frames)
    n_edges = sum(int(f[AtomicDataDict.EDGE_INDEX_KEY].shape[1]) for f in frames)
    data = AtomicData.to_AtomicDataDict(Batch.from_data_list(frames).to(device))
    params = [p for p in model.parameters() if p.requires_grad]

    print(f"config:        {a.config}")
    print(f"implementation: nequip {__import__('nequip').__version__} (torch {torch.__version__}, e3nn {__import__('e3nn').__version__})")
    print(f"device:        {device}")
    print(f"threads:       {torch.get_num_threads()}")
    print(f"model_dtype:   {config['model_dtype']}")
    print(f"parameters:    {sum(p.numel() for p in params)} trainable")
    print(f"frames:        {a.n_data} ({n_atoms} atoms, {n_edges / a.n_data:.1f} edges per frame)")
    print(f"calls:         {a.warmup} warmup, {a.repeat} timed")

    def forward(m=model):
        out = m(data.copy())
        out[AtomicDataDict.TOTAL_ENERGY_KEY].sum().item()

    def train_step():
        for p in params:
            if p.grad is not None:
                p.grad.detach_()
                p.grad.zero_()
        out = model(data.copy())
        f = out[AtomicDataDict.FORCE_KEY]
        loss = (f - data[AtomicDataDict.FORCE_KEY].to(f.dtype)).square().mean()
        loss.backward()
        loss.item()

    model.eval()
    line("forward", time_calls(a.warmup, a.repeat, forward), a.n_data, n_atoms)
    if not a.no_train:
        model.train()
        line("train step", time_calls(a.warmup, a.repeat, train_step), a.n_data, n_atoms)
    if a.compile:
        from e3nn.util.jit import script

        model.eval()
        for p in model.parameters():
            p.grad = None
        scripted = torch.jit.freeze(script(model))
        # as nequip-benchmark: warm past the JIT's profiling runs
        warmup = max(a.warmup, config.get("_jit_bailout_depth", 2) + 4)
        line("forward TS", time_calls(warmup, a.repeat, lambda: forward(scripted)), a.n_data, n_atoms)


if __name__ == "__main__":
    main()
