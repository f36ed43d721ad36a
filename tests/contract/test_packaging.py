"""The built wheel works on its own: installed into a fresh venv, it imports, finds the
embedded data inside the package, and trains three steps."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

STEPS = """
import sys, torch, gg_augment as gg
from gg_augment.data import load_embedded, embedded_path
assert gg.__file__.startswith(sys.prefix), gg.__file__          # the venv's copy, not the checkout
assert str(embedded_path()).startswith(sys.prefix), embedded_path()
images, labels = load_embedded("train").tensors
model = gg.RetrievalNet(*gg.build_backbone("small"), code_length=16)
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
pipeline = gg.RetentionPipeline(gg.GCut(model, grid_size=4, generator=torch.Generator().manual_seed(0)))
loss_fn = gg.RetentionWeightedPairwiseLoss()
for step in range(3):
    batch = torch.arange(step * 32, (step + 1) * 32)
    x_aug, weight = pipeline(images[batch], batch)
    loss = loss_fn(model(x_aug), labels[batch], weight)
    optimizer.zero_grad(); loss.backward(); optimizer.step()
print("version", gg.__version__, "loss", float(loss))
"""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--sdist", "--wheel", "--no-isolation", "--outdir", str(out), str(ROOT)],
        check=True, capture_output=True, text=True, timeout=1800,
    )
    assert len(list(out.glob("*.tar.gz"))) == 1
    (built,) = out.glob("*.whl")
    return built


def test_the_wheel_carries_the_embedded_data_and_the_version(wheel):
    import gg_augment

    names = zipfile.ZipFile(wheel).namelist()
    assert any(name.startswith("gg_augment/data/_embedded/") and name.endswith(".npz") for name in names)
    assert "gg_augment/py.typed" in names
    assert f"-{gg_augment.__version__}-" in wheel.name


def test_the_wheel_installs_into_a_fresh_venv_and_trains(wheel, tmp_path):
    # A path file lends the venv this environment's torch (no download of several GB); the
    # package itself comes only from the wheel, which the script checks (the venv's own
    # site-packages come first, and a plain path line does not run the checkout's editable hook).
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    target = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                            capture_output=True, text=True, check=True).stdout.strip()
    lent = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (Path(target) / "lent-torch.pth").write_text("\n".join(sorted(lent)) + "\n")
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)], check=True, timeout=1800)
    finished = subprocess.run([str(python), "-c", STEPS], capture_output=True, text=True, timeout=1800, cwd=tmp_path)
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert finished.stdout.startswith("version ")
