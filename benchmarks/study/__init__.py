"""The study that answers "does GG help?": main, baselines, gap, robustness, ablation, efficiency
and approximate-vs-exact tables.

Every cell comes from runs of the library's trainer (:func:`gg_augment.training.run`), each a
:class:`~gg_augment.training.TrainConfig`: the preset's configuration with the seed, the code
lengths and the method's or ablation's fields replaced. Runs are paired: runs that share a seed
share the split, the initial weights and the data order (the trainer draws order and
augmentations from separate generators), so the difference between two methods at one seed
cancels most of the seed noise. Each table reports the raw mean ± std over seeds and, next to
it, the paired Δ's mean ± standard error; the per-seed values behind every cell are in the
table's markdown and JSON.

    python -m benchmarks.study --preset cpu-pretrained --table main
    python -m benchmarks.study --preset cpu-scratch --table all --jobs 2
    python -m benchmarks.study --preset gpu --table all --jobs 12    # on a GPU machine
    python -m benchmarks.study --preset cpu-pretrained --smoke        # tiny, for CI
    python -m benchmarks.study --preset cpu-tiny-data --table ablation --ablations rule,attention

Tables (``--table all`` builds each in turn;
runs are shared, never repeated):

main         methods × code lengths: mAP mean ± std over seeds, paired Δ vs ``standard`` and vs
             ``none`` (mean ± s.e.; ``*`` when |Δ| > 2 × the std of the paired differences)
baselines    paper-recipe presets: every method's paired Δ against ``none`` and erasing trained
             as the authors did (``--baselines authors``) and matched to the queries (``matched``)
gap          presets that evaluate training images every epoch: train and query mAP per epoch
robustness   the main table's models at ``--ablation-bits``, queries erased at 0.2/0.4/0.6/0.8 of
             their area (one rectangle, zero fill, a seeded draw shared by all methods)
ablation     variants at ``--ablation-bits``, each with its paired Δ vs its reference run, and the
             trained model's attention lift for G_cut rows (``--ablations GROUP,...`` keeps some
             groups: weighting, rule, score, curve, sigma, limit, attention)
efficiency   exact vs approximate G_cut from the main table's runs: epoch time, forward calls
             per step, peak memory and mAP
approximate  the approximate G_cut's paired Δ against the exact one, per code length

Presets: ``presets.py`` (``--preset``; the measured durations are in docs/results.md). Each
table is written as markdown, CSV, PNG and JSON under ``--out/<preset>/`` by the benchmarks'
harness, with the command, commit, machine and duration in its header and the preset's
departures from the authors' protocol beside it. Finished runs under ``--out`` are reused, so
an interrupted study continues where it stopped.
"""
