"""The bad-input audit, as tests: each case must end in a ValueError/TypeError (or, for the
command line, one line and exit code 2) that names the argument. Nothing silent, nothing
obscure. ``python -m pytest tests/contract/test_bad_inputs.py -q`` re-runs the audit."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

import pytest
import torch
from torch import nn

import gg_augment as gg
from gg_augment.data import load_cifar10, load_embedded
from gg_augment.hashing import DSDHSolver
from gg_augment.metrics import mean_average_precision, precision_recall_curve, recall_at_k
from gg_augment.training.cli import parse_config

X = torch.randn(4, 3, 16, 16)
NAN_X = X.clone().index_fill_(0, torch.tensor([1]), float("nan"))
CODES = torch.tensor([[1.0, -1.0], [-1.0, 1.0], [1.0, 1.0], [-1.0, -1.0]])
LABELS = torch.tensor([0, 1, 0, 1])


def _small_model() -> gg.RetrievalNet:
    torch.manual_seed(0)
    return gg.RetrievalNet(*gg.build_backbone("small"), 8)


def _gt_params(**change):
    params = gg.GT(sigma=0.2).generate_params(X.shape)
    return params | change


def _gcut_params(**change):
    gcut = gg.GCut(grid_size=4)
    params = gcut.generate_params(X.shape, attention=gcut.compute_attention(X, torch.rand(4, 4, 4)))
    return params | change


def _resnet18_at_32px():
    import torchvision

    gcut = gg.GCut(torchvision.models.resnet18(), grid_size=8)
    return gcut(torch.randn(2, 3, 32, 32))


def _bf16_batch_through_fp32_model():
    return gg.GCut(_small_model(), grid_size=4)(torch.randn(2, 3, 32, 32, dtype=torch.bfloat16))


def _cached_gcut(**call):
    model = _small_model()
    gcut = gg.GCut(model, cache=gg.AttentionCache(10, grid_size=4), grid_size=4)
    return gcut(torch.randn(4, 3, 32, 32), **call)


# (id, call, exception type, a regex the message must match: it names the argument)
API_CASES: list[tuple[str, Callable[[], object], type[Exception], str]] = [
    # augmentations: configuration
    ("GT sigma <= 0", lambda: gg.GT(sigma=0), ValueError, r"sigma must lie in \[0.001, 10\]"),
    ("GT max_shift > 1", lambda: gg.GT(max_shift=1.5), ValueError, r"max_shift must lie in \(0, 1\]"),
    ("GT fill unknown", lambda: gg.GT(fill="blue"), ValueError, r"fill must be one of \['random', 'reflect'\]"),
    ("GT fill wrong type", lambda: gg.GT(fill=[0.0]), TypeError, r"fill must be 'random', 'reflect' or a float"),
    ("GT overlap unknown", lambda: gg.GT(overlap="area"), ValueError, r"overlap must be one of"),
    ("GT p > 1", lambda: gg.GT(p=1.5), ValueError, r"p must lie in \[0, 1\]"),
    ("GT generator wrong type", lambda: gg.GT(generator=0), TypeError, r"generator must be a torch.Generator"),
    ("GCut grid 0", lambda: gg.GCut(grid_size=0), ValueError, r"grid_size must be >= 1"),
    # augmentations: every float parameter finite and in a range that changes the output (issue 18)
    ("GT sigma inf", lambda: gg.GT(sigma=float("inf")), ValueError, r"sigma must be a finite number; got inf"),
    ("GT sigma 1e300", lambda: gg.GT(sigma=1e300), ValueError, r"sigma must lie in \[0.001, 10\]; got 1e\+300"),
    ("GT sigma nan", lambda: gg.GT(sigma=float("nan")), ValueError, r"sigma must be a finite number; got nan"),
    ("GT fill nan", lambda: gg.GT(fill=float("nan")), ValueError, r"fill must be a finite number; got nan"),
    ("GT fill inf", lambda: gg.GT(fill=float("-inf")), ValueError, r"fill must be a finite number; got -inf"),
    ("GT fill_scale inf", lambda: gg.GT(fill_scale=float("inf")), ValueError, r"fill_scale must be a finite number"),
    ("GT fill_scale 1e30", lambda: gg.GT(fill_scale=1e30), ValueError, r"fill_scale must lie in \[0, 10000\]"),
    ("GT max_shift nan", lambda: gg.GT(max_shift=float("nan")), ValueError, r"max_shift must be a finite number"),
    ("GT max_shift below a pixel", lambda: gg.GT(max_shift=0.01)(X), ValueError, r"max_shift=0.01 allows no whole-pixel shift on 16x16"),
    ("GT fill beyond float16", lambda: gg.GT(fill=1e6)(X.half()), ValueError, r"fill=1000000.0 does not fit in torch.float16"),
    ("GCut sigma inf", lambda: gg.GCut(sigma=float("inf")), ValueError, r"sigma must be a finite number; got inf"),
    ("GCut sigma 1e300", lambda: gg.GCut(sigma=1e300), ValueError, r"sigma must lie in \[0.01, 100\]"),
    ("GCut fill nan", lambda: gg.GCut(fill=float("nan")), ValueError, r"fill must be a finite number; got nan"),
    ("GCut limit cuts nothing", lambda: gg.GCut(grid_size=3, limit=0.1), ValueError, r"limit=0.1 lets no cell be cut on a 3x3 grid"),
    ("GCut keep_ratio nan", lambda: gg.GCut(keep_ratio=float("nan")), ValueError, r"keep_ratio must be a finite number"),
    ("erasing scale (0, 0)", lambda: gg.RandomErasingRetention(scale=(0, 0)), ValueError, r"scale must allow a positive erased share"),
    ("erasing ratio inf", lambda: gg.RandomErasingRetention(ratio=(0.3, float("inf"))), ValueError, r"ratio\[1\] must be a finite number"),
    ("erasing fill nan", lambda: gg.RandomErasingRetention(fill=float("nan")), ValueError, r"fill must be a finite number; got nan"),
    ("erasing min_share nan", lambda: gg.RandomErasingRetention(min_share=float("nan")), ValueError, r"min_share must be a finite number"),
    ("crop ratio inf", lambda: gg.RandomResizedCropFlip(8, ratio=(0.5, float("inf"))), ValueError, r"ratio\[1\] must be a finite number"),
    ("crop flip_p nan", lambda: gg.RandomResizedCropFlip(8, flip_p=float("nan")), ValueError, r"flip_p must be a finite number"),
    ("retention k inf", lambda: gg.SemanticRetention("power", k=float("inf")), ValueError, r"k must be a finite number; got inf"),
    ("retention p_min nan", lambda: gg.SemanticRetention(p_min=float("nan")), ValueError, r"p_min must be a finite number"),
    ("ImageOnly wrong type", lambda: gg.ImageOnly(nn.Identity()), TypeError, r"augmentation must be a retention augmentation"),
    ("GCut grid of one cell", lambda: gg.GCut(grid_size=1), ValueError, r"grid_size must have at least 2 cells"),
    ("GCut limit 0", lambda: gg.GCut(limit=0), ValueError, r"limit must lie in \(0, 1\]"),
    ("GCut select unknown", lambda: gg.GCut(select="max"), ValueError, r"select must be one of"),
    ("GCut score unknown", lambda: gg.GCut(score="x"), ValueError, r"score must be one of"),
    ("GCut keep_ratio 0", lambda: gg.GCut(keep_ratio=0.0), ValueError, r"keep_ratio must lie in \(0, 1\]"),
    ("GCut fill str", lambda: gg.GCut(fill="zero"), TypeError, r"fill must be a float"),
    ("GCut source and model", lambda: gg.GCut(_small_model(), source=gg.GivenAttention(torch.ones(1, 2, 2))), ValueError, r"either source= or the short forms"),
    ("GCut forward without model", lambda: gg.GCut(attention_source="forward"), ValueError, r"attention_source='forward' needs model="),
    ("GCut cache wrong type", lambda: gg.GCut(_small_model(), attention_source="cache", cache={}), TypeError, r"needs cache=AttentionCache"),
    ("GCut attention_fn not callable", lambda: gg.GCut(attention_fn=3), TypeError, r"attention_fn must be callable"),
    ("erasing scale reversed", lambda: gg.RandomErasingRetention(scale=(0.5, 0.2)), ValueError, r"scale must satisfy min <= max"),
    ("erasing ratio <= 0", lambda: gg.RandomErasingRetention(ratio=(0.0, 1.0)), ValueError, r"ratio\[0\] must be > 0; got 0.0"),
    ("crop size 0", lambda: gg.RandomResizedCropFlip(0), ValueError, r"size must be >= 1"),
    ("crop scale 0", lambda: gg.RandomResizedCropFlip(8, scale=(0.0, 1.0)), ValueError, r"scale\[0\] must lie in \(0, 1\]"),
    ("crop mode unknown", lambda: gg.RandomResizedCropFlip(8, mode="cubic"), ValueError, r"mode must be one of"),
    # augmentations: calls
    ("x 3-D", lambda: gg.GT()(torch.randn(3, 8, 8)), ValueError, r"x must have shape \(B, C, H, W\)"),
    ("x integer", lambda: gg.GT()(torch.zeros(2, 3, 8, 8, dtype=torch.uint8)), TypeError, r"x must have a floating dtype"),
    ("x list", lambda: gg.GT()([[0.0]]), TypeError, r"x must be a torch.Tensor"),
    ("GT NaN image", lambda: gg.GT()(NAN_X), ValueError, r"x must be finite"),
    ("erasing Inf image", lambda: gg.RandomErasingRetention()(X.clone().fill_(float("inf"))), ValueError, r"x must be finite"),
    ("crop NaN image", lambda: gg.RandomResizedCropFlip(8)(NAN_X), ValueError, r"x must be finite"),
    ("exact GCut NaN image", lambda: gg.GCut(_small_model(), grid_size=4)(torch.full((2, 3, 32, 32), float("nan"))), ValueError, r"x must be finite"),
    ("GCut NaN attention", lambda: gg.GCut(grid_size=4)(X, attention=torch.full((4, 4, 4), float("nan"))), ValueError, r"attention must be finite"),
    ("GCut negative attention", lambda: gg.GCut(grid_size=4)(X, attention=-torch.ones(4, 4, 4)), ValueError, r"attention must be non-negative"),
    ("GCut 1-cell attention", lambda: gg.GCut(grid_size=4)(X, attention=torch.ones(4, 1, 1)), ValueError, r"attention must have at least 2 cells"),
    ("GCut grid finer than image", lambda: gg.GCut(grid_size=32)(X, attention=torch.rand(4, 4, 4)), ValueError, r"grid_size \(32, 32\) is finer than the images \(16x16\)"),
    ("GCut ResNet-18 layer4 at 32 px", _resnet18_at_32px, ValueError, r"attention layer 'layer4' of ResNet gives a 1x1 map at 32x32 input.*earlier layer"),
    ("GCut bf16 batch, fp32 model", _bf16_batch_through_fp32_model, TypeError, r"x has dtype torch.bfloat16 but RetrievalNet's parameters are torch.float32"),
    ("GCut unknown keyword", lambda: gg.GCut(grid_size=4)(X, index=LABELS), TypeError, r"unexpected keyword\(s\) \['index'\]"),
    ("cached GCut without view", lambda: _cached_gcut(), ValueError, r"needs view="),
    ("cached GCut index out of range", lambda: _cached_gcut(view=torch.tensor([0, 1, 2, 10])), ValueError, r"index must lie in \[0, 9\]"),
    ("cached GCut float index", lambda: _cached_gcut(view=torch.zeros(4)), TypeError, r"index must have an integer dtype"),
    # replay
    ("GT replay shift too large", lambda: gg.GT(sigma=0.2)(X, params=_gt_params(shift=torch.full((4, 2), 40))), ValueError, r"params\['shift'\] must satisfy \|dy\| <= 16"),
    ("GT replay float shift", lambda: gg.GT(sigma=0.2)(X, params=_gt_params(shift=torch.zeros(4, 2))), TypeError, r"params\['shift'\] must have an integer dtype"),
    ("GT replay missing key", lambda: gg.GT()(X, params={}), ValueError, r"params must hold 'shift'"),
    ("GT replay not a dict", lambda: gg.GT()(X, params=[1]), TypeError, r"params must be a dict"),
    ("erasing replay box outside", lambda: gg.RandomErasingRetention(fill=0.0)(X, params={"boxes": torch.tensor([[0, 0, 20, 4]] * 4)}), ValueError, r"params\['boxes'\] must be \(y0, x0, y1, x1\) with 0 <= y0 <= y1 <= 16"),
    ("crop replay bad box", lambda: gg.RandomResizedCropFlip(8)(X, params={"view_boxes": torch.tensor([[0.5, 0.0, 0.2, 1.0]] * 4), "flips": torch.zeros(4, dtype=torch.bool)}), ValueError, r"params\['view_boxes'\] must satisfy y0 < y1"),
    ("crop replay float flips", lambda: gg.RandomResizedCropFlip(8)(X, params={"view_boxes": torch.tensor([[0.0, 0.0, 1.0, 1.0]] * 4), "flips": torch.zeros(4)}), TypeError, r"params\['flips'\] must be a bool tensor"),
    ("GCut replay cut outside candidates", lambda: gg.GCut(grid_size=4)(X, params=_gcut_params(cut=torch.ones(4, 4, 4, dtype=torch.bool))), ValueError, r"params\['cut'\] must cut candidate cells only"),
    ("GCut replay wrong grid", lambda: gg.GCut(grid_size=4)(X, params=_gcut_params(cut=torch.zeros(4, 2, 2, dtype=torch.bool))), ValueError, r"params\['cut'\] must have shape \(4, 4, 4\)"),
    # retention, loss
    ("curve unknown", lambda: gg.SemanticRetention("cubic"), ValueError, r"curve must be 'identity', 'power' or a callable"),
    ("p_min > 1", lambda: gg.SemanticRetention(p_min=2), ValueError, r"p_min must lie in \[0, 1\]"),
    ("curve returns NaN", lambda: gg.SemanticRetention(lambda r: r * float("nan"))(torch.rand(4)), ValueError, r"curve\(retention\) must be finite"),
    ("retention > 1", lambda: gg.SemanticRetention()(torch.full((3,), 1.5)), ValueError, r"retention must lie in \[0, 1\]"),
    ("loss similarity unknown", lambda: gg.RetentionWeightedPairwiseLoss("l2"), ValueError, r"similarity must be one of"),
    ("loss scale 0", lambda: gg.RetentionWeightedPairwiseLoss(scale=0), ValueError, r"scale must be > 0; got 0"),
    ("loss NaN outputs", lambda: gg.RetentionWeightedPairwiseLoss()(CODES * float("nan"), LABELS), ValueError, r"outputs must be finite"),
    ("loss labels (B, 1)", lambda: gg.RetentionWeightedPairwiseLoss()(CODES, LABELS.unsqueeze(1)), ValueError, r"labels of shape \(4, 1\) is ambiguous"),
    ("loss weight out of range", lambda: gg.RetentionWeightedPairwiseLoss()(CODES, LABELS, torch.full((4,), 2.0)), ValueError, r"weight must lie in \[0, 1\]"),
    ("loss bank without labels", lambda: gg.RetentionWeightedPairwiseLoss()(CODES, LABELS, bank=CODES), ValueError, r"bank mode needs bank_labels="),
    # metrics, hashing
    ("mAP k = 0", lambda: mean_average_precision(CODES, CODES, LABELS, LABELS, k=0), ValueError, r"k must be None \(whole database\) or an int >= 1"),
    ("mAP k positional", lambda: mean_average_precision(CODES, CODES, LABELS, LABELS, 5), TypeError, r"positional argument"),
    ("mAP metric unknown", lambda: mean_average_precision(CODES, CODES, LABELS, LABELS, metric="l2"), ValueError, r"metric must be one of"),
    ("mAP labels (B, 1)", lambda: mean_average_precision(CODES, CODES, LABELS.unsqueeze(1), LABELS.unsqueeze(1)), ValueError, r"query_labels of shape \(4, 1\) is ambiguous"),
    ("mAP codes not ±1", lambda: mean_average_precision(CODES * 0.5, CODES, LABELS, LABELS), ValueError, r"query"),
    ("recall k empty", lambda: recall_at_k(CODES, CODES, LABELS, LABELS, k=()), ValueError, r"k must be an int or hold at least one"),
    ("PR curve labels mismatch", lambda: precision_recall_curve(CODES, CODES, LABELS, LABELS[:3]), ValueError, r"database_labels must have shape \(4,\)"),
    ("DSDH code_length 0", lambda: DSDHSolver(10, 0, 2), ValueError, r"code_length must be an int >= 1"),
    ("DSDH labels (N, 1)", lambda: DSDHSolver(4, 8, 2).set_labels(LABELS.unsqueeze(1)), ValueError, r"labels of shape \(4, 1\) is ambiguous"),
    ("DSDH index out of range", lambda: DSDHSolver(4, 8, 2).targets(torch.tensor([0, 4])), ValueError, r"index must lie in \[0, 3\]"),
    # cache, view, pipeline
    ("cache num_samples 0", lambda: gg.AttentionCache(0), ValueError, r"num_samples must be an int >= 1"),
    ("cache integer dtype", lambda: gg.AttentionCache(4, dtype=torch.int64), TypeError, r"dtype must be a floating torch.dtype"),
    ("cache read without index", lambda: gg.AttentionCache(4).read(gg.View(boxes=torch.rand(2, 4))), ValueError, r"needs the dataset indices"),
    ("view boxes wrong shape", lambda: gg.View(LABELS, boxes=torch.rand(3, 4)).validated(4, 10), ValueError, r"view.boxes must have shape \(4, 4\)"),
    ("view wrong type", lambda: gg.AttentionCache(4).read([0, 1]), TypeError, r"view must be a gg_augment.View"),
    ("pipeline wrong augmentation", lambda: gg.RetentionPipeline(nn.Identity()), TypeError, r"augmentation must be a RetentionAugmentation"),
    # data
    ("embedded split unknown", lambda: load_embedded("val"), ValueError, r"split must be one of"),
    ("embedded channels 0", lambda: load_embedded("train", channels=0), ValueError, r"channels must be an int >= 1"),
    ("CIFAR root missing", lambda: load_cifar10("/nonexistent/cifar"), FileNotFoundError, r"/nonexistent/cifar"),
    ("CIFAR num_query negative", lambda: load_cifar10("/nonexistent", num_query=-1), ValueError, r"num_query must be an int >= 0"),
]


@pytest.mark.parametrize(("call", "error", "match"), [c[1:] for c in API_CASES], ids=[c[0] for c in API_CASES])
def test_api_bad_input_gets_a_clear_error(call, error, match):
    if "ResNet-18" in str(match) or "ResNet" in str(match):
        pytest.importorskip("torchvision")
    with pytest.raises(error, match=match):
        call()


# (flags, the flag the one-line error must name)
CLI_CASES = [
    (["--gcut-grid", "0"], "--gcut-grid"),
    (["--crop-scale", "0"], "--crop-scale"),
    (["--crop-scale", "1.5"], "--crop-scale"),
    (["--device", "banana"], "--device"),
    (["--device", "cuda:7"] if not torch.cuda.is_available() else ["--device", "cuda:99"], "--device"),
    (["--threads", "-1"], "--threads"),
    (["--lr", "-1"], "--lr"),
    (["--lr", "nan"], "--lr"),
    (["--epochs", "0"], "--epochs"),
    (["--batch-size", "1"], "--batch-size"),
    (["--image-size", "0"], "--image-size"),
    (["--seed", "-1"], "--seed"),
    (["--gt-sigma", "0"], "--gt-sigma"),
    (["--cache-momentum", "1.5"], "--cache-momentum"),
    (["--topk", "0"], "--topk"),
    (["--eval-every", "-2"], "--eval-every"),
    (["--limit-train", "1"], "--limit-train"),
    (["--data", "cifar10"], "--data-root"),
    (["--data", "cifar10", "--data-root", "/nonexistent/cifar"], "--data-root"),
    (["--arch", "vit_b_16", "--image-size", "40"], "--image-size"),
    (["--code-lengths", "0"], "--code-lengths"),
    (["--augment", "mixup"], "--augment"),
    (["--epochs", "three"], "--epochs"),
]


@pytest.mark.parametrize(("argv", "flag"), CLI_CASES, ids=[" ".join(c[0]) for c in CLI_CASES])
def test_cli_bad_flag_is_one_line_naming_the_flag(argv, flag, capsys, monkeypatch):
    import gg_augment.training.data as training_data

    def no_data(*_args, **_kwargs):
        raise AssertionError("data was loaded before the flags were checked")

    monkeypatch.setattr(training_data, "load_splits", no_data)
    with pytest.raises(SystemExit) as exit_info:
        parse_config("hashing", argv)
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and f"argument {flag}" in lines[0], lines


def test_cli_errors_print_no_traceback():
    finished = subprocess.run(
        [sys.executable, "examples/train_hashing.py", "--device", "cuda:7", "--no-progress"],
        capture_output=True, text=True, timeout=1800,
    )
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert finished.returncode == 2
    assert "Traceback" not in finished.stderr
    assert finished.stderr.strip().count("\n") == 0 and "argument --device" in finished.stderr


def test_trainer_image_size_too_small_for_gcut_fails_on_the_first_step(tmp_path):
    from gg_augment.training import TrainConfig, run

    config = TrainConfig(image_size=4, gcut_grid=2, epochs=1, code_lengths=(8,), limit_train=32, limit_query=8,
                         limit_database=16, batch_size=16, out=tmp_path, progress=False)
    with pytest.raises(ValueError, match=r"attention layer 'backbone.layer4'.*1x1 map at 4x4 input"):
        run(config)
