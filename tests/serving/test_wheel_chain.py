"""From the built wheel in a fresh venv: ``gg-augment train`` (tiny) -> ``encode`` -> ``index``
-> ``search``, and the search finds every training image at Hamming distance 0 from itself."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

WRITE_PNGS = """
import sys, gg_augment
assert gg_augment.__file__.startswith(sys.prefix), gg_augment.__file__  # the wheel's copy
from PIL import Image
from gg_augment.data import load_embedded
images, _ = load_embedded("train", image_size=28, channels=1, normalize=False).tensors
for i in range(40):
    Image.fromarray((images[i, 0] * 255).round().byte().numpy()).save(f"train/{i:03d}.png")
"""


def test_the_installed_wheel_trains_encodes_indexes_and_finds_each_image_itself(tmp_path):
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(dist), str(ROOT)],
        check=True, capture_output=True, text=True,
    )
    (wheel,) = dist.glob("*.whl")
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    target = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                            capture_output=True, text=True, check=True).stdout.strip()
    # Lend this environment's torch and numpy (no download); gg_augment comes from the wheel.
    lent = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (Path(target) / "lent-torch.pth").write_text("\n".join(sorted(lent)) + "\n")
    # --ignore-installed: a gg-augment visible through the lent path (an editable checkout) must
    # neither satisfy the install nor be uninstalled by it.
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--ignore-installed", str(wheel)],
                   check=True)
    command = env_dir / "bin" / "gg-augment"
    assert command.is_file()

    # Not the checkout's sources: only the wheel's copy may answer ``import gg_augment``.
    environment = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"OMP_NUM_THREADS": "1"}

    def run(*args: str) -> str:
        done = subprocess.run([*args], capture_output=True, text=True, cwd=tmp_path, env=environment)
        assert done.returncode == 0, (args, done.stderr[-3000:])
        return done.stdout

    run(str(command), "train", "hashing", "--epochs", "1", "--limit-train", "64", "--limit-query", "16",
        "--limit-database", "32", "--code-lengths", "32", "--augment", "gt", "--batch-size", "32",
        "--no-progress", "--threads", "1", "--out", "run")
    (tmp_path / "train").mkdir()
    run(str(python), "-c", WRITE_PNGS)
    run(str(command), "encode", "run", "train", "--out", "codes.npz")
    run(str(python), "-m", "gg_augment", "index", "codes.npz", "--out", "train.index")
    rows = json.loads(run(str(command), "search", "run", "train.index", "train", "--k", "40", "--format", "json"))
    assert len(rows) == 40 * 40
    for i in range(40):
        query = f"train/{i:03d}.png"
        mine = [r for r in rows if r["query"] == query]
        (own,) = [r for r in mine if r["name"] == query]
        assert own["id"] == i and own["distance"] == 0
        assert mine[0]["distance"] == 0
