"""PDEBench-layout HDF5: round trip, parameters, windows read from the file piece by piece, the NS cache back end."""
import pickle

import numpy as np
import pytest
import torch

h5py = pytest.importorskip("h5py")

from workbench.data.hdf5 import H5Windows, export_hdf5, import_hdf5, read_params  # noqa: E402
from workbench.data.navier_stokes import kolmogorov_config, load_or_generate  # noqa: E402
from workbench.errors import ConfigError  # noqa: E402


def _traj(b=3, t=6, n=8, d=2):
    g = torch.Generator().manual_seed(0)
    return torch.randn(b, t, *([n] * d), generator=g, dtype=torch.float64)


@pytest.mark.parametrize("d", [1, 2])
def test_export_import_round_trip_in_the_pdebench_layout(tmp_path, d):
    f = _traj(d=d)
    x = torch.linspace(0, 1, 9, dtype=torch.float64)[:-1]
    coords = {"x": x} if d == 1 else {"x": x, "y": 2 * x}
    params = {"nu": 0.01, "equation": "burgers", "n": 8, "bands": [4, 12]}
    p = export_hdf5(str(tmp_path / "a.h5"), f, torch.arange(6) * 0.5, coords, params)
    with h5py.File(p, "r") as h:  # the names and shapes other tools read
        assert h["tensor"].shape == tuple(f.shape) and h["t-coordinate"].shape == (6,)
        assert h["x-coordinate"].shape == (8,) and (("y-coordinate" in h) == (d == 2))
        assert h.attrs["nu"] == 0.01 and h.attrs["layout"] == "pdebench"
    z = import_hdf5(p)
    assert torch.equal(z["fields"], f) and torch.equal(z["x"], x) and torch.allclose(z["times"], torch.arange(6) * 0.5)
    assert z["params"] == params and read_params(p) == params


def test_import_accepts_pdebench_edge_times_and_validates(tmp_path):
    p = str(tmp_path / "pdebench.h5")
    with h5py.File(p, "w") as h:  # as PDEBench writes 1-D files: T + 1 time edges, no parameters JSON
        h["tensor"] = np.zeros((2, 4, 8))
        h["t-coordinate"] = np.linspace(0, 1, 5)
        h["x-coordinate"] = np.linspace(0, 1, 8)
        h.attrs["beta"] = 0.1
    z = import_hdf5(p)
    assert z["times"].shape == (4,) and z["params"] == {"beta": 0.1}
    with pytest.raises(ConfigError, match=r"fields: must be \[batch, time, x\]"):
        export_hdf5(str(tmp_path / "b.h5"), torch.zeros(2, 3), torch.zeros(3), {"x": torch.zeros(3)})
    with pytest.raises(ConfigError, match="coords: missing y"):
        export_hdf5(str(tmp_path / "b.h5"), _traj(), torch.zeros(6), {"x": torch.zeros(8)})
    with pytest.raises(ConfigError, match="times"):
        export_hdf5(str(tmp_path / "b.h5"), _traj(), torch.zeros(5), {"x": torch.zeros(8), "y": torch.zeros(8)})


def test_windows_read_only_their_frames(tmp_path, monkeypatch):
    f = _traj(b=3, t=10, n=8)
    p = export_hdf5(str(tmp_path / "w.h5"), f, torch.arange(10.0), {"x": torch.arange(8.0), "y": torch.arange(8.0)})
    ds = H5Windows(p, length=3, stride=2, trajectories=[0, 2], dtype=torch.float64)
    assert len(ds) == 2 * 4  # starts 0, 2, 4, 6 in trajectories 0 and 2
    reads = []
    orig = h5py.Dataset.__getitem__

    def spy(self, key):
        out = orig(self, key)
        reads.append(np.asarray(out).size)
        return out

    monkeypatch.setattr(h5py.Dataset, "__getitem__", spy)
    got = [ds[i] for i in range(len(ds))]
    assert torch.equal(got[0], f[0, 0:3]) and torch.equal(got[5], f[2, 2:5]) and torch.equal(got[-1], f[2, 6:9])
    assert reads and max(reads) == 3 * 8 * 8  # every read is one window, never the whole tensor (3*10*64)
    # a DataLoader batches windows; a pickled copy (as sent to workers) reopens the file itself
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=4)))
    assert batch.shape == (4, 3, 8, 8)
    clone = pickle.loads(pickle.dumps(ds))
    assert clone._file is None and torch.equal(clone[1], f[0, 2:5])
    ds.close()
    with pytest.raises(ConfigError, match="length: must be in"):
        H5Windows(p, length=11)
    with pytest.raises(ConfigError, match="trajectories"):
        H5Windows(p, trajectories=[3])


def test_navier_stokes_cache_has_an_hdf5_back_end(tmp_path):
    cfg = kolmogorov_config(n_traj=2, n=16, frames=3, frame_dt=0.1, warmup=0.2, dt=0.02)
    a = load_or_generate(cfg, str(tmp_path / "ns.npz"), progress=False)
    b = load_or_generate(cfg, str(tmp_path / "ns.h5"), progress=False)
    assert torch.equal(a["vorticity"], b["vorticity"])
    c = load_or_generate(cfg, str(tmp_path / "ns.h5"), progress=False)  # read back (transposed twice)
    assert torch.equal(c["vorticity"], a["vorticity"]) and torch.allclose(c["times"], a["times"])
    with h5py.File(str(tmp_path / "ns.h5"), "r") as h:  # stored as [batch, time, x, y]
        assert torch.equal(torch.from_numpy(h["tensor"][0, 1]), a["vorticity"][0, 1].T)
    other = kolmogorov_config(n_traj=2, n=16, frames=3, frame_dt=0.1, warmup=0.2, dt=0.02, nu=0.01)
    with pytest.raises(ConfigError, match=r"cache: .*different parameters: nu"):
        load_or_generate(other, str(tmp_path / "ns.h5"), progress=False)


@pytest.mark.parametrize("equation", ["ks", "burgers"])
def test_cli_simulate1d_writes_pdebench_files(tmp_path, equation):
    from workbench.cli import main as cli_main

    out = tmp_path / f"{equation}.h5"
    rc = cli_main(["fields", "simulate1d", "--equation", equation, "--out", str(out), "--n-traj", "2",
                   "--grid", "64", "--frames", "3", "--warmup", "0"] + (["--length", "50"] if equation == "ks" else []))
    assert rc == 0
    z = import_hdf5(str(out))
    assert z["fields"].shape == (2, 3, 64) and z["x"].shape == (64,)
    assert z["params"]["equation"] == ("kuramoto_sivashinsky" if equation == "ks" else "burgers")
    # the start is random_sines: zero mean, and the mean stays zero (both equations conserve it)
    assert float(z["fields"].mean(-1).abs().max()) < 1e-12
