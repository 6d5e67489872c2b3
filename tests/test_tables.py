"""The table maker on synthetic trees of results.json files: folder layouts, seed aggregation, harmonic means
and averages checked against the paper's own arithmetic, missing runs, ablation rows, output formats; and the
transcribed published numbers checked for internal consistency."""
import json
import os

import pytest

from promptlearn.tools import paper_results as paper
from promptlearn.tools.tables import (
    B2N_DATASETS,
    XD_TARGETS,
    Results,
    build_tables,
    collect_runs,
    config_family,
    harmonic_mean,
    main,
    render,
)

OFFSETS = {1: -0.3, 2: 0.0, 3: 0.3}  # mean 0, population std 0.2449


def write_result(root, rel: str, accuracy: float, classes: str, seed: int = -1) -> None:
    folder = os.path.join(str(root), rel)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "results.json"), "w") as f:
        json.dump({"test": {"accuracy": accuracy, "error_rate": 100 - accuracy, "epoch": 1},
                   "run": {"subsample_classes": classes, "seed": seed}}, f)


def write_b2n(root, trainer: str, cfg: str, per_dataset: dict, seeds=(1, 2, 3), offsets=None) -> None:
    """Base and new results of every dataset, the value of ``per_dataset`` plus a per-seed offset."""
    for dataset, (base, new, *_) in per_dataset.items():
        for seed in seeds:
            off = (offsets or {}).get(seed, 0.0)
            tail = f"{dataset}/shots_16/{trainer}/{cfg}/seed{seed}"
            write_result(root, f"base2new/train_base/{tail}", base + off, "base", seed)
            write_result(root, f"base2new/test_new/{tail}", new + off, "new", seed)


def tables_by_title(root, *args) -> dict:
    runs, warnings = collect_runs(str(root))
    assert not warnings
    return {t.title: render(t, "github") for t in build_tables(Results(runs), *args)}


def tables_text(root, *args) -> str:
    return "\n\n".join(tables_by_title(root, *args).values())


def section(text: str, title_start: str) -> str:
    """The rendered table whose title starts with ``title_start``."""
    blocks = text.split("\n\n")
    for i, block in enumerate(blocks):
        if block.startswith(title_start):
            return "\n\n".join(blocks[i:i + 2])
    raise AssertionError(f"no table {title_start!r} in:\n{text}")


def row_of(text: str, *cells: str) -> list:
    """The cells of the first table row holding all ``cells``."""
    for line in text.splitlines():
        parts = [p.strip() for p in line.strip().strip("|").split("|")]
        if all(c in parts for c in cells):
            return parts
    raise AssertionError(f"no row with {cells} in:\n{text}")


def test_harmonic_mean():
    assert harmonic_mean(84.21, 77.32) == pytest.approx(80.618, abs=1e-3)
    assert harmonic_mean(0.0, 0.0) == 0.0


def test_b2n_average_row_is_hm_of_averages(tmp_path):
    """Fed the paper's per-dataset numbers, the average rows come out as the paper's Table 1."""
    write_b2n(tmp_path, "GOPro", "vit_b16", paper.B2N["GOPro"], offsets=OFFSETS)
    write_b2n(tmp_path, "CoOp", "vit_b16_ctxv1", {d: v for d, v in paper.B2N["CoOp"].items() if d != "imagenet"})
    write_b2n(tmp_path, "CoOp", "vit_b16_ep50_ctxv1", {"imagenet": paper.B2N["CoOp"]["imagenet"]})
    text = tables_text(tmp_path, ["b2n"])
    average = section(text, "Table 1")
    gopro = row_of(average, "GOPro")
    assert gopro[1:4] == ["84.21 ± 0.24", "77.32 ± 0.24", "80.62"]
    assert gopro[7:] == ["+0.00", "+0.00", "+0.00"]
    # the mean of the per-dataset HMs would be 80.42 (GOPro) and 70.83 (CoOp)
    coop = row_of(average, "CoOp")  # ImageNet's 50-epoch config joins the 200-epoch row
    assert coop[1:4] == ["82.69 ± 0.00", "63.22 ± 0.00", "71.66"]
    assert "80.42" not in average and "70.83" not in average
    # per dataset: mean ± population std over the seeds, and the HM of the means
    caltech = row_of(text, "Caltech101", "GOPro")
    assert caltech[2:5] == ["98.86 ± 0.24", "95.78 ± 0.24", "97.30"]
    assert caltech[5:8] == ["98.86", "95.78", "97.30"]
    assert "Missing runs: 0" in text
    assert "CoOp = vit_b16_ctxv1, vit_b16_ep50_ctxv1" in text


def test_b2n_hand_computed_values(tmp_path):
    write_b2n(tmp_path, "CoCoOp", "vit_b16_c4_ep10_batch1_ctxv1", {"dtd": (70.0, 50.0)}, seeds=(1, 2),
              offsets={1: -1.0, 2: 1.0})
    text = tables_text(tmp_path, ["b2n"])
    row = row_of(text, "DTD", "CoCoOp")
    assert row[2:5] == ["70.00 ± 1.00", "50.00 ± 1.00", "58.33"]  # 2*70*50/120
    assert row[8:11] == ["-7.01", "-6.00", "-6.52"]  # against 77.01 / 56.00 / 64.85
    # one of the 11 datasets: no average, and the missing runs are not counted for datasets nobody ran
    assert row_of(section(text, "Table 1"), "CoCoOp")[1:4] == ["-", "-", "-"]
    assert "(1 found)" in text and "Missing runs: 0" in text


def test_missing_runs(tmp_path):
    write_b2n(tmp_path, "MaPLe", "vit_b16_c2_ep5_batch4_2ctx", paper.B2N["MaPLe"])
    os.remove(tmp_path / "base2new/test_new/eurosat/shots_16/MaPLe/vit_b16_c2_ep5_batch4_2ctx/seed3/results.json")
    write_b2n(tmp_path, "CoOp", "vit_b16_ctxv1", {"eurosat": paper.B2N["CoOp"]["eurosat"]}, seeds=(1,))
    text = tables_text(tmp_path, ["b2n"])
    assert row_of(text, "EuroSAT", "MaPLe")[2:4] == ["94.07 ± 0.00", "73.23 ± 0.00 *"]
    assert row_of(text, "Caltech101", "CoOp")[2:5] == ["-", "-", "-"]
    # 1 MaPLe run + 10 datasets x base/new for CoOp
    assert "Missing runs: 21 (CoOp: 20 (imagenet base seed1, imagenet new seed1, caltech101 base seed1, ...); " \
           "MaPLe: 1 (eurosat new seed3))" in text
    assert row_of(section(text, "Table 1"), "MaPLe")[3] == "78.55"  # still all 11 datasets
    assert row_of(section(text, "Table 1"), "CoOp")[1] == "-"


def test_seeds_option_counts_unrun_seeds(tmp_path):
    write_b2n(tmp_path, "GOPro", "vit_b16", {"dtd": (80.0, 60.0)}, seeds=(1, 2, 3))
    runs, _ = collect_runs(str(tmp_path))
    text = render(build_tables(Results(runs, seeds=[1, 2, 3, 4, 5]), ["b2n"])[0], "github")
    assert "Missing runs: 4 (GOPro: 4 (dtd base seed4, dtd base seed5, dtd new seed4, ...))" in text
    assert row_of(text, "DTD", "GOPro")[2] == "80.00 ± 0.00 *"


def test_cross_dataset_average_excludes_imagenet(tmp_path):
    for seed in (1, 2):
        for dataset, acc in paper.CROSS_DATASET["CoOp"].items():
            if dataset == "imagenet":
                write_result(tmp_path, f"imagenet/CoOp/vit_b16_ep50_ctxv1_16shots/seed{seed}", acc, "all", seed)
            elif dataset != "average":
                write_result(tmp_path, f"evaluation/CoOp/vit_b16_ep50_ctxv1_16shots/{dataset}/seed{seed}", acc,
                             "all", seed)
    text = tables_text(tmp_path, ["xd"])
    row = row_of(text, "CoOp")
    assert row[1] == "71.51 ± 0.00"  # the source, ImageNet
    assert row[-1] == "63.88 ± 0.00"  # mean of the 10 targets; with ImageNet it would be 64.58
    assert row_of(text, "paper")[-1] == "63.88"
    assert row_of(text, "Δ")[-1] == "+0.00"
    assert "Missing runs: 0" in text


def test_domain_generalization_and_zero_shot(tmp_path):
    for dataset, acc in paper.DOMAIN_GENERALIZATION["CLIP"].items():
        write_result(tmp_path, f"ZeroshotCLIP/vit_b16/all/{dataset}", acc, "all")
    for dataset, acc in paper.DOMAIN_GENERALIZATION["GOPro"].items():
        for seed, off in OFFSETS.items():
            rel = (f"imagenet/GOPro/vit_b16_xd_16shots/seed{seed}" if dataset == "imagenet"
                   else f"evaluation/GOPro/vit_b16_xd_16shots/{dataset}/seed{seed}")
            write_result(tmp_path, rel, acc + off, "all", seed)
    write_result(tmp_path, "ZeroshotCLIP/vit_b16/base/dtd", 53.24, "base")
    write_result(tmp_path, "ZeroshotCLIP/vit_b16/new/dtd", 59.90, "new")
    text = tables_text(tmp_path)
    dg = section(text, "Table 2")
    assert row_of(dg, "ZeroshotCLIP")[1:] == ["66.73", "60.83", "46.15", "47.77", "73.96"]  # one run: no std
    assert row_of(dg, "GOPro")[1:] == ["73.27 ± 0.24", "65.35 ± 0.24", "50.36 ± 0.24", "52.23 ± 0.24",
                                       "78.02 ± 0.24"]
    assert "Missing runs: 0" in dg
    assert row_of(text, "DTD", "ZeroshotCLIP")[2:5] == ["53.24", "59.90", "56.37"]
    assert "Cross-dataset" not in text  # no cross-dataset targets were run


def test_ablation_rows_from_folder_suffixes(tmp_path):
    for row, values in paper.ABLATION.items():
        cfg = "vit_b16" if row == "full" else f"vit_b16_loss_{row}"
        write_b2n(tmp_path, "GOPro", cfg, {d: values for d in B2N_DATASETS}, seeds=(1, 2), offsets={1: -0.5, 2: 0.5})
    text = tables_text(tmp_path)
    ablation = section(text, "Table 3")
    assert row_of(ablation, "L_ce")[1:4] == ["81.34 ± 0.50", "72.16 ± 0.50", "76.48"]
    assert row_of(ablation, "L_ce + L_sem(x1 + x2)")[1:4] == ["83.87 ± 0.50", "75.15 ± 0.50", "79.27"]
    assert row_of(ablation, "L_ce + L_sem + L_con")[7:] == ["+0.00", "+0.00", "+0.00"]
    assert "Missing runs: 0" in ablation
    # the ablation runs are not GOPro rows of Table 1
    assert row_of(section(text, "Table 1"), "GOPro")[1:4] == ["84.21 ± 0.50", "77.32 ± 0.50", "80.62"]
    assert "vit_b16_loss" not in section(text, "Table 1")


def test_ablation_rows_without_runs_are_missing(tmp_path):
    write_b2n(tmp_path, "GOPro", "vit_b16", {"dtd": (1.0, 1.0)}, seeds=(1,))
    write_b2n(tmp_path, "GOPro", "vit_b16_loss_ce", {"dtd": (1.0, 1.0)}, seeds=(1,))
    ablation = section(tables_text(tmp_path, ["ablation"]), "Table 3")
    assert "Missing runs: 8" in ablation  # 4 rows without runs x base/new on the one dataset


def test_several_configs_of_a_trainer_get_labelled_rows(tmp_path):
    write_b2n(tmp_path, "GOPro", "vit_b16", {"dtd": (80.0, 60.0)})
    write_b2n(tmp_path, "GOPro", "vit_b16_official", {"dtd": (81.0, 61.0)})
    text = tables_text(tmp_path, ["b2n"])
    assert row_of(text, "DTD", "GOPro (vit_b16)")[2] == "80.00 ± 0.00"
    assert row_of(text, "DTD", "GOPro (vit_b16_official)")[2] == "81.00 ± 0.00"


def test_config_family():
    assert config_family("vit_b16_ep50_ctxv1") == "vit_b16_ctxv1"
    assert config_family("vit_b16_ep100") == "vit_b16"
    assert config_family("vit_b16_c2_ep5_batch4_2ctx_cross_datasets") == "vit_b16_c2_batch4_2ctx_cross_datasets"
    assert config_family("vit_b16_deep") == "vit_b16_deep"


def test_shots_unfinished_runs_and_mismatched_classes(tmp_path, capsys):
    write_b2n(tmp_path, "CoOp", "tiny", {"demo_shapes": (60.0, 40.0)}, seeds=(1,))
    tail = "demo_shapes/shots_4/CoOp/tiny/seed1"
    write_result(tmp_path, f"base2new/train_base/{tail}", 55.0, "base", 1)
    write_result(tmp_path, f"base2new/test_new/{tail}", 45.0, "all", 1)
    os.makedirs(tmp_path / "base2new/test_new/demo_shapes/shots_4/CoOp/tiny/seed2")
    with open(tmp_path / "base2new/test_new/demo_shapes/shots_4/CoOp/tiny/seed2/results.json", "w") as f:
        json.dump({"val": {"accuracy": 1.0}}, f)
    assert main([str(tmp_path), "--tables", "b2n"]) == 0
    out, _ = capsys.readouterr()
    assert row_of(out, "demo_shapes", "CoOp")[2:5] == ["60.00", "40.00", "48.00"]
    assert main([str(tmp_path), "--shots", "4", "--tables", "b2n"]) == 0
    out, err = capsys.readouterr()
    assert row_of(out, "demo_shapes", "CoOp")[2:4] == ["55.00", "45.00"]
    assert "evaluated on the all classes" in err
    assert "no test accuracy" in err and "seed2" in err


def test_formats_and_errors(tmp_path, capsys):
    write_b2n(tmp_path, "GOPro", "vit_b16", {"dtd": (80.0, 60.0)}, seeds=(1, 2), offsets={1: -1.0, 2: 1.0})
    assert main([str(tmp_path), "--format", "csv", "--tables", "b2n"]) == 0
    out, _ = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0].startswith("# Base-to-new generalization per dataset")
    assert lines[1].startswith("Dataset,Method,Base,Base std,New,New std,HM,")
    assert lines[2].startswith("DTD,GOPro,80.0000,1.0000,60.0000,1.0000,68.5714,82.4100,")
    assert main([str(tmp_path), "--format", "nonsense"]) == 2
    assert main([str(tmp_path / "nowhere")]) == 1
    os.makedirs(tmp_path / "empty")
    assert main([str(tmp_path / "empty")]) == 1
    _, err = capsys.readouterr()
    assert "unknown format" in err and "No results" in err


# -- the published numbers ----------------------------------------------------------------------------------

@pytest.mark.parametrize("method", sorted(paper.B2N))
def test_published_b2n_numbers_are_consistent(method):
    per_dataset = paper.B2N[method]
    assert list(per_dataset) == B2N_DATASETS
    for base, new, hm in per_dataset.values():
        assert harmonic_mean(base, new) == pytest.approx(hm, abs=0.011)
    base_avg = sum(v[0] for v in per_dataset.values()) / 11
    new_avg = sum(v[1] for v in per_dataset.values()) / 11
    pub = paper.B2N_AVERAGE[method]
    assert base_avg == pytest.approx(pub[0], abs=0.006)
    assert new_avg == pytest.approx(pub[1], abs=0.006)
    assert harmonic_mean(pub[0], pub[1]) == pytest.approx(pub[2], abs=0.006)


@pytest.mark.parametrize("method", sorted(paper.CROSS_DATASET))
def test_published_cross_dataset_average(method):
    row = paper.CROSS_DATASET[method]
    assert sum(row[d] for d in XD_TARGETS) / 10 == pytest.approx(row["average"], abs=0.006)


def test_published_ablation_and_flowers_correction():
    for base, new, hm in paper.ABLATION.values():
        assert harmonic_mean(base, new) == pytest.approx(hm, abs=0.006)
    assert paper.ABLATION["full"] == paper.B2N_AVERAGE["GOPro"]
    assert paper.B2N["CoCoOp"]["oxford_flowers"][1] == 71.75


def test_own_dataset_only_has_no_paper_average(tmp_path):
    """Runs on a dataset outside the paper's 11 (Mini-B2N's) get their per-dataset table and no empty average."""
    write_b2n(tmp_path, "GOPro", "mini_vit", {"mini_shapes": (80.0, 60.0)}, seeds=(1,))
    titles = tables_by_title(tmp_path, ["b2n"])
    assert list(titles) == ["Base-to-new generalization per dataset (16 shots)"]
    row = [line for line in titles["Base-to-new generalization per dataset (16 shots)"].splitlines()
           if "mini_shapes" in line][0]
    assert [cell.strip() for cell in row.split("|")[1:6]] == ["mini_shapes", "GOPro", "80.00", "60.00", "68.57"]


# -- SLIP, Figure 2 and the files of --out-dir ------------------------------------------------------------------

def write_nctx(root, counts, per_dataset: dict, seeds=(1,), skip=()) -> None:
    """Figure 2's runs: GOPro vit_b16_nctx<N>, Base and New of ``per_dataset`` minus N/10 (``skip``: (N, dataset))."""
    for n in counts:
        write_b2n(root, "GOPro", f"vit_b16_nctx{n}",
                  {d: (b - n / 10, nw - n / 10) for d, (b, nw, *_) in per_dataset.items() if (n, d) not in skip},
                  seeds=seeds)


def test_slip_row_has_the_papers_numbers(tmp_path):
    write_b2n(tmp_path, "SLIP", "vit_b16", paper.B2N["SLIP"])
    text = tables_text(tmp_path, ["b2n"])
    assert row_of(section(text, "Table 1"), "SLIP")[1:] == ["69.77 ± 0.00", "74.28 ± 0.00", "71.96", "69.77",
                                                            "74.28", "71.96", "+0.00", "+0.00", "+0.00"]
    assert row_of(text, "DTD", "SLIP")[5:8] == ["56.71", "59.30", "57.98"]
    assert paper.SLIP_NOTE in text


def test_figure2_table(tmp_path):
    datasets = {d: paper.B2N["GOPro"][d] for d in ("dtd", "eurosat")}
    write_nctx(tmp_path, (1, 4, 16), datasets, seeds=(1, 2), skip={(16, "eurosat")})
    write_b2n(tmp_path, "GOPro", "vit_b16", datasets)
    titles = tables_by_title(tmp_path, ["b2n", "figure2"])
    figure = titles["Figure 2: sensitivity to the number of prompt tokens (GOPro, vit_b16), base-to-new"]
    assert row_of(figure, "DTD", "4")[2:5] == ["82.01 ± 0.00", "62.55 ± 0.00", "70.97"]
    # the average over the datasets found: 16 tokens lacks EuroSAT, so it has no average, and the runs are missing
    assert row_of(figure, "Average over 2 datasets", "1")[2:4] == [f"{(82.41 + 94.92) / 2 - 0.1:.2f} ± 0.00",
                                                                   f"{(62.95 + 76.27) / 2 - 0.1:.2f} ± 0.00"]
    assert row_of(figure, "Average over 2 datasets", "16")[2:5] == ["-", "-", "-"]
    assert row_of(figure, "EuroSAT", "16")[2:5] == ["-", "-", "-"]
    assert "Missing runs: 4 (16 tokens: 4 (eurosat base seed1, eurosat base seed2, eurosat new seed1, ...))" in figure
    # the sweep's runs are not rows of the base-to-new tables
    per_dataset = titles["Base-to-new generalization per dataset (16 shots)"]
    assert "nctx" not in per_dataset and row_of(per_dataset, "DTD", "GOPro")[2] == "82.41 ± 0.00"


def test_figure2_chart_shows_the_table(tmp_path):
    write_nctx(tmp_path, (2, 8), {"dtd": (80.0, 60.0)}, seeds=(1, 2, 3))
    runs, _ = collect_runs(str(tmp_path))
    [table] = build_tables(Results(runs), ["figure2"])
    assert table.slug == "figure2_prompt_tokens_gopro_vit_b16"
    [panel] = table.chart.panels  # one dataset: its panel, no average
    assert table.chart.kind == "lines" and panel.title == "DTD" and panel.groups == ["2", "8"]
    base, new, hm = panel.series
    assert [s.label for s in panel.series] == ["Base", "New", "H"] and [s.marker for s in panel.series] == \
        ["D", "^", "o"]
    assert base.values == pytest.approx([79.8, 79.2]) and new.values == pytest.approx([59.8, 59.2])
    assert hm.values == pytest.approx([harmonic_mean(79.8, 59.8), harmonic_mean(79.2, 59.2)])
    assert base.errors == [0.0, 0.0] and hm.errors == [None, None]


def test_bar_charts_carry_the_published_numbers(tmp_path):
    write_b2n(tmp_path, "GOPro", "vit_b16", paper.B2N["GOPro"], offsets=OFFSETS)
    runs, _ = collect_runs(str(tmp_path))
    per_dataset, average = build_tables(Results(runs), ["b2n"])
    base, new, hm = per_dataset.chart.panels
    assert base.groups[:2] == ["ImageNet", "Caltech101"] and [s.label for s in hm.series] == ["GOPro"]
    assert hm.series[0].published == [v[2] for v in paper.B2N["GOPro"].values()]
    assert base.series[0].errors[0] == pytest.approx(0.2449, abs=1e-4)
    [panel] = average.chart.panels
    assert panel.groups == ["Base", "New", "HM"] and panel.series[0].published == list(paper.B2N_AVERAGE["GOPro"])
    assert panel.series[0].values == pytest.approx(list(paper.B2N_AVERAGE["GOPro"]), abs=0.006)


def drawn_values(chart, title: str) -> tuple:
    """The heights of the bars (or the y of the line points) and the published ticks the picture draws."""
    from matplotlib.patches import Rectangle

    from promptlearn.tools.plots import chart_figure

    values, published = [], []
    for ax in chart_figure(chart, title).axes:
        values += [p.get_height() for p in ax.patches if isinstance(p, Rectangle)]
        values += [y for line in ax.lines if line.get_marker() in ("D", "^", "o") for y in line.get_ydata()]
        for collection in ax.collections:  # the published ticks are horizontal segments (error bars: vertical)
            published += [a[1] for a, b in getattr(collection, "get_segments", list)() if a[1] == b[1] != a[0]]
    return sorted(v for v in values if v == v), sorted(published)


def chart_numbers(chart) -> tuple:
    values = sorted(v for p in chart.panels for s in p.series for v in s.values if v is not None)
    published = sorted(v for p in chart.panels for s in p.series for v in s.published if v is not None)
    return values, published


def largest_colour_share(path) -> float:
    """The share of the PNG's pixels in its most frequent colour other than white (0 for a blank picture)."""
    from PIL import Image

    with Image.open(path) as image:
        assert image.format == "PNG" and image.size[0] > 300 and image.size[1] > 200
        colours = image.convert("RGB").getcolors(maxcolors=1 << 22)
        total = image.size[0] * image.size[1]
    return max((count for count, rgb in colours if rgb != (255, 255, 255)), default=0) / total


def test_out_dir_writes_every_tables_files(tmp_path, capsys):
    out = tmp_path / "out"
    write_b2n(out, "GOPro", "vit_b16", paper.B2N["GOPro"], offsets=OFFSETS)
    write_b2n(out, "SLIP", "vit_b16", paper.B2N["SLIP"], seeds=(1, 2))
    for row in ("ce", "ce_con"):
        write_b2n(out, "GOPro", f"vit_b16_loss_{row}", {"dtd": (70.0, 50.0)}, seeds=(1,))
    write_nctx(out, (1, 2), {"dtd": (80.0, 60.0), "eurosat": (90.0, 70.0)}, skip={(2, "dtd")})
    for dataset, acc in paper.CROSS_DATASET["GOPro"].items():
        rel = "imagenet/GOPro/vit_b16_xd_16shots/seed1" if dataset == "imagenet" else \
            f"evaluation/GOPro/vit_b16_xd_16shots/{dataset}/seed1"
        if dataset != "average":
            write_result(out, rel, acc, "all", 1)
    write_result(out, "evaluation/GOPro/vit_b16_xd_16shots/imagenet_a/seed1", 52.0, "all", 1)
    assert main([str(out), "--out-dir", str(tmp_path / "tables")]) == 0
    printed, err = capsys.readouterr()
    slugs = ["b2n_per_dataset", "table1_b2n_average", "cross_dataset", "table2_domain_generalization",
             "table3_ablation_vit_b16", "figure2_prompt_tokens_gopro_vit_b16"]
    files = sorted(f"{s}.{ext}" for s in slugs for ext in ("csv", "md", "png"))
    assert sorted(os.listdir(tmp_path / "tables")) == files
    runs, _ = collect_runs(str(out))
    for table in build_tables(Results(runs)):
        stem = tmp_path / "tables" / table.slug
        assert (stem.with_suffix(".csv")).read_text() == render(table, "csv") + "\n"
        markdown = stem.with_suffix(".md").read_text()
        assert markdown.startswith(f"### {table.title}\n") and f"]({table.slug}.png)" in markdown
        assert render(table, "github").split("\n\n")[1].split("\n")[0] in markdown  # the same table
        assert drawn_values(table.chart, table.title) == chart_numbers(table.chart), table.slug
        assert largest_colour_share(stem.with_suffix(".png")) > 0.01, table.slug
        assert table.title in printed  # printed as before
    assert "Wrote 18 files" in err
