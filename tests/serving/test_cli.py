"""``gg-augment`` in process: encode -> index -> search, and one-line flag errors."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest

from gg_augment.serving.cli import main


def test_encode_index_search_finds_each_training_image_at_distance_zero(tiny_run, train_pngs, tmp_path, capsys):
    folder = train_pngs[0].parent
    assert main(["encode", str(tiny_run), str(folder), "--out", str(tmp_path / "codes.npz")]) == 0
    with np.load(tmp_path / "codes.npz") as archive:
        codes, names = archive["codes"], [str(n) for n in archive["names"]]
    assert codes.dtype == np.bool_ and codes.shape == (len(train_pngs), 16)
    assert names == [str(p) for p in sorted(train_pngs)]
    assert main(["index", str(tmp_path / "codes.npz"), "--out", str(tmp_path / "train.index")]) == 0
    capsys.readouterr()
    queries = folder / "queries.txt"
    queries.write_text("".join(f"{p.name}\n" for p in sorted(train_pngs)[:5]))
    k = len(train_pngs)  # every tie at distance 0 is listed, so the image itself must be
    assert main(["search", str(tiny_run), str(tmp_path / "train.index"), str(queries), "--k", str(k)]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 5 * k
    for position, path in enumerate(sorted(train_pngs)[:5]):
        mine = [r for r in rows if r["query"] == str(path)]
        assert [r["rank"] for r in mine] == list(range(1, k + 1))
        assert [r["distance"] for r in mine] == sorted(r["distance"] for r in mine)
        (own,) = [r for r in mine if r["name"] == str(path)]
        assert own["id"] == position and own["distance"] == 0
        same_code = {i for i in range(len(codes)) if (codes[i] == codes[position]).all()}
        assert {r["id"] for r in mine if r["distance"] == 0} == same_code
        hamming = {r["id"]: r["distance"] for r in mine}
        assert all(hamming[i] == int((codes[i] != codes[position]).sum()) for i in hamming)
    assert main(["search", str(tiny_run), str(tmp_path / "train.index"), str(queries), "--k", "3",
                 "--format", "csv", "--out", str(tmp_path / "hits.csv")]) == 0
    table = list(csv.DictReader(io.StringIO((tmp_path / "hits.csv").read_text())))
    assert len(table) == 15 and list(table[0]) == ["query", "rank", "id", "distance", "name"]
    assert table[0]["distance"] == "0"


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["train", "bogus"], "argument train: mode"),
        (["train"], "argument train: mode"),
        (["encode", "/no/such/run", ".", "--out", "c.npz"], "argument model: no such file"),
        (["encode", ".", ".", "--out", "c.npz", "--batch-size", "0"], "argument --batch-size"),
        (["encode", ".", "."], "--out"),
        (["search", ".", ".", ".", "--format", "xml"], "argument --format"),
        (["search", ".", ".", ".", "--k", "-1"], "argument --k"),
        (["index", "/no/such/codes.npz", "--out", "i"], "argument codes: no such file"),
        (["serve"], "argument command"),
        (["encode", ".", ".", "--out", "c.npz", "--device", "tpu"], "argument --device"),
        (["export", "."], "argument export: give at least one"),
    ],
)
def test_a_bad_flag_is_one_line_and_exit_code_2(argv, flag, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and flag in err, err


def test_a_trainer_flag_error_keeps_the_trainers_one_line_and_exit_code_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "hashing", "--epochs", "0", "--no-progress"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--epochs" in err


def test_a_real_valued_run_is_indexed_and_searched_by_cosine(tmp_path, train_pngs, capsys):
    from gg_augment.training.cli import main as train

    from .conftest import TINY_RUN

    train("real", argv=[*TINY_RUN, "--out", str(tmp_path / "real")])
    folder = str(train_pngs[0].parent)
    assert main(["encode", str(tmp_path / "real"), folder, "--out", str(tmp_path / "codes.npz")]) == 0
    with np.load(tmp_path / "codes.npz") as archive:
        embeddings = archive["codes"]
    assert embeddings.dtype == np.float32 and embeddings.shape == (len(train_pngs), 16)
    assert main(["index", str(tmp_path / "codes.npz"), "--out", str(tmp_path / "real.index")]) == 0
    capsys.readouterr()
    assert main(["search", str(tmp_path / "real"), str(tmp_path / "real.index"), folder, "--k", "2"]) == 0
    rows = json.loads(capsys.readouterr().out)
    firsts = [r for r in rows if r["rank"] == 1]
    assert [r["name"] for r in firsts] == [r["query"] for r in firsts]  # each image finds itself first
    assert all(abs(r["distance"]) < 1e-5 for r in firsts)
    assert all(r["distance"] > 0 for r in rows if r["rank"] == 2)


def test_a_model_and_an_index_of_different_kinds_are_refused_in_one_line(tiny_run, train_pngs, tmp_path, capsys):
    np.savez(tmp_path / "real.npz", codes=np.ones((2, 16), np.float32), names=np.array(["a", "b"]),
             hashing=np.array(False), code_length=np.array(16))
    assert main(["index", str(tmp_path / "real.npz"), "--out", str(tmp_path / "real.index")]) == 0
    capsys.readouterr()
    assert main(["search", str(tiny_run), str(tmp_path / "real.index"), str(train_pngs[0])]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "real-valued embeddings, but the model makes hash codes" in err


def test_export_writes_a_model_file_and_a_program(tiny_run, tmp_path, capsys):
    import torch

    from gg_augment.data import load_embedded
    from gg_augment.serving import load_trained_model

    # (--onnx runs export_onnx, tested in test_export.py)
    argv = ["export", str(tiny_run), "--model-file", str(tmp_path / "model.pt"), "--program", str(tmp_path / "encoder.pt2")]
    assert main(argv) == 0
    images = load_embedded("query", image_size=32).tensors[0][:8]
    expected = load_trained_model(tiny_run).encode(images)
    assert torch.equal(load_trained_model(tmp_path / "model.pt").encode(images), expected)
    assert torch.equal(torch.export.load(tmp_path / "encoder.pt2").module()(images), expected)


def test_an_hnsw_index_serves_the_search_when_asked_for(tiny_run, train_pngs, tmp_path, capsys):
    pytest.importorskip("faiss")
    folder = str(train_pngs[0].parent)
    assert main(["encode", str(tiny_run), folder, "--out", str(tmp_path / "codes.npz")]) == 0
    assert main(["index", str(tmp_path / "codes.npz"), "--out", str(tmp_path / "hnsw.index"), "--approximate", "hnsw"]) == 0
    from gg_augment.hashing import BinaryCodeIndex

    assert BinaryCodeIndex.load(tmp_path / "hnsw.index").approximate == "hnsw"
    capsys.readouterr()
    assert main(["search", str(tiny_run), str(tmp_path / "hnsw.index"), str(train_pngs[0]), "--k", "5"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 5 and rows[0]["distance"] == 0
