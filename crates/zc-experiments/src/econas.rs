//! The paper's Figures 1 and 2 from training results (`zc train`) and proxy sweeps:
//! reduced-training correlation against epochs, FLOPs and runtime (Figure 1), and every
//! proxy's and baseline's correlation against its cost (Figure 2), with a Markdown report of
//! the numbers beside the paper's.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use zc_benchmark::{GroundTruth, Metric};
use zc_data::Dataset;

use crate::compare::num;
use crate::stats;
use crate::table::{self, Table, TableOptions, TrainingRead};
use crate::training::{self, TrainRuns};

/// The paper's reduced-training reference points: (name, setting, epoch, |ρ|, cost in
/// baseline epochs by normalised GPU time) on CIFAR-10 (reference.md §5).
pub const PAPER_ECONAS: [(&str, &str, usize, f64, f64); 2] = [
    ("econas", "r8c4", 20, 0.61, 5.0),
    ("econas+", "r16c8", 15, 0.80, 4.5),
];

/// The paper's FLOPs per epoch relative to the real network, per setting (reference.md §5).
pub const PAPER_FLOPS_RATIO: [(&str, f64); 4] = [
    ("r8c4", 1.0 / 230.0),
    ("r8c8", 1.0 / 59.5),
    ("r16c4", 1.0 / 59.5),
    ("r16c8", 1.0 / 15.4),
];

/// One setting's correlation curve (Figure 1).
#[derive(Debug, Clone)]
pub struct SettingCurve {
    /// Setting, e.g. `r8c4`.
    pub setting: String,
    /// Cells trained at this setting.
    pub cells: usize,
    /// Per epoch (0 = untrained): (epoch, Spearman ρ, training FLOPs so far in baseline
    /// epochs, mean measured seconds per cell so far).
    pub points: Vec<(usize, f64, f64, f64)>,
}

/// Figure 1's data: one curve per trained setting, against `target` accuracies.
pub fn figure1_curves(
    runs: &TrainRuns,
    table: &GroundTruth,
    target: &str,
    seed: u64,
) -> anyhow::Result<Vec<SettingCurve>> {
    let dataset: Dataset = runs
        .dataset
        .as_deref()
        .context("no training rows")?
        .parse()?;
    let truth = table.accuracies(dataset, Metric::parse(target, dataset)?)?;
    let mut by_setting: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (s, index, setting) in runs.runs.keys() {
        if *s == seed {
            by_setting.entry(setting.clone()).or_default().push(*index);
        }
    }
    let mut curves = Vec::new();
    for (setting, cells) in by_setting {
        let epochs = cells
            .iter()
            .map(|&i| runs.runs[&(seed, i, setting.clone())].len())
            .min()
            .unwrap_or(0);
        let mut points = Vec::new();
        for epoch in 0..epochs {
            let (mut x, mut y, mut flops, mut seconds) = (Vec::new(), Vec::new(), 0.0, 0.0);
            for &index in &cells {
                let rows = &runs.runs[&(seed, index, setting.clone())];
                let row = &rows[epoch];
                x.push(row.test_accuracy);
                y.push(truth[index]);
                flops += epoch as f64 * row.epoch_flops / row.baseline_epoch_flops;
                seconds += rows[1..=epoch].iter().map(|r| r.seconds).sum::<f64>();
            }
            let n = cells.len() as f64;
            points.push((epoch, stats::spearman(&x, &y), flops / n, seconds / n));
        }
        curves.push(SettingCurve {
            setting,
            cells: cells.len(),
            points,
        });
    }
    curves.sort_by_key(|c| {
        c.setting
            .parse::<zc_train::Setting>()
            .map(|s| (s.resolution, s.channels))
            .unwrap_or_default()
    });
    Ok(curves)
}

/// Both figures' data and where they were drawn.
pub struct Figures {
    /// Figure 1's curves.
    pub curves: Vec<SettingCurve>,
    /// Figure 2's rows (the table with training reads).
    pub table: Table,
    /// Files written.
    pub files: Vec<PathBuf>,
}

/// Computes Figures 1 and 2 from `train` (training results) and `sweeps` (proxy sweeps), draws
/// `{out}-figure1.{png,svg}` and `{out}-figure2.{png,svg}`, and writes `{out}.md`.
pub fn figures(
    train: &[PathBuf],
    sweeps: &[PathBuf],
    table: &GroundTruth,
    data_dir: &Path,
    out: &Path,
    provenance: &str,
) -> anyhow::Result<Figures> {
    if out
        .as_os_str()
        .to_string_lossy()
        .ends_with(std::path::MAIN_SEPARATOR)
        || out.is_dir()
    {
        bail!(
            "--out {} is a directory; give a file stem such as results/figures/econas (writes \
             results/figures/econas-figure1.png, ... and results/figures/econas.md)",
            out.display()
        );
    }
    let runs = training::read_runs(train)?;
    if runs.runs.is_empty() {
        bail!(
            "no training rows in {}: run `zc train` first",
            train
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let seeds: std::collections::BTreeSet<u64> = runs.runs.keys().map(|k| k.0).collect();
    if seeds.len() > 1 {
        bail!(
            "the training rows have seeds {seeds:?}: Figure 1 draws one seed; give the files of one"
        );
    }
    let seed = seeds.into_iter().next().unwrap_or(0);
    let curves = figure1_curves(&runs, table, "paper", seed)?;
    let epochs = runs.identity.as_ref().map_or(0, |i| i.epochs as usize);
    let mut train_reads = Vec::new();
    for name in ["econas", "econas+"] {
        let read: TrainingRead = name.parse()?;
        // Only the reads these runs reach (a shorter training has no epoch 20).
        if read.epoch <= epochs {
            train_reads.push(read);
        }
    }
    let options = TableOptions {
        train: train.to_vec(),
        train_reads,
        ..TableOptions::default()
    };
    let computed = table::compute_with_runs(sweeps, table, data_dir, &options, Some(&runs))?;
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let stem = |suffix: &str| {
        let mut name = out.as_os_str().to_owned();
        name.push(suffix);
        PathBuf::from(name)
    };
    let data = runs
        .identity
        .as_ref()
        .map_or(String::new(), |i| i.data.clone());
    crate::figure::draw_figure1(&curves, &data, &stem("-figure1"))?;
    crate::figure::draw_figure2(&computed.rows, &stem("-figure2"))?;
    let md = stem(".md");
    crate::store::write_text_atomic(&md, &markdown(&curves, &computed, &runs, provenance))?;
    let files = vec![
        stem("-figure1.png"),
        stem("-figure1.svg"),
        stem("-figure2.png"),
        stem("-figure2.svg"),
        md,
    ];
    Ok(Figures {
        curves,
        table: computed,
        files,
    })
}

/// The report: Figure 1's correlations at chosen epochs with their costs, the paper's
/// econas points beside ours, and Figure 2's rows.
pub fn markdown(
    curves: &[SettingCurve],
    table: &Table,
    runs: &TrainRuns,
    provenance: &str,
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Reduced training (EcoNAS) and zero-cost proxies: the paper's Figures 1 and 2\n"
    );
    let _ = writeln!(out, "{provenance}\n");
    if let Some(identity) = &runs.identity {
        let _ = writeln!(
            out,
            "Training: {}; {} epochs, batch {}, {}, the authors' recipe (SGD 0.1, Nesterov momentum \
             0.9, weight decay 5e-4, cosine to 0; RandomCrop + Resize + flip). zc git {}.\n",
            identity.data,
            identity.epochs,
            identity.batch_size,
            identity.precision,
            runs.revisions
                .iter()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        );
        if identity.data.starts_with("shipped") {
            let _ = writeln!(
                out,
                "**Data-reduced**: these runs train and test on parts of the shipped 1,000 CIFAR-10 \
                 images, not on the paper's 50,000 / 10,000; their correlations are those of a \
                 data-reduced econas, not the paper's econas. Train on the official files with \
                 `zc train experiments/econas-official.yaml --official DIR` for the paper's setting.\n"
            );
        }
    }
    let _ = writeln!(
        out,
        "## Figure 1: Spearman ρ of test accuracy vs. the CIFAR-10 target, by epoch\n"
    );
    let _ = writeln!(
        out,
        "ρ against the paper's CIFAR-10 target (one-seed `cifar10-valid` test accuracy) after each \
         epoch; FLOPs: training FLOPs so far in baseline (r32c16) epochs; s/cell: measured \
         seconds per cell so far (training and evaluation, one core).\n"
    );
    let marks = [1usize, 5, 10, 15, 20, 30, 40];
    let _ = write!(out, "| setting | cells | FLOPs/epoch (ours, paper) |");
    for m in marks {
        let _ = write!(out, " ρ e{m} |");
    }
    let last = curves.iter().map(|c| c.points.len()).max().unwrap_or(1) - 1;
    let _ = writeln!(out, " s/cell at e{last} |");
    let _ = writeln!(out, "|---|---:|---|{}---:|", "---:|".repeat(marks.len()));
    for c in curves {
        let paper_ratio = PAPER_FLOPS_RATIO
            .iter()
            .find(|(s, _)| *s == c.setting)
            .map_or("".into(), |(_, r)| format!("1/{:.1}", 1.0 / r));
        let ours = c.points.get(1).map_or(f64::NAN, |p| p.2);
        let _ = write!(
            out,
            "| {} | {} | 1/{:.1}, {paper_ratio} |",
            c.setting,
            c.cells,
            1.0 / ours
        );
        for m in marks {
            let _ = write!(
                out,
                " {} |",
                c.points.get(m).map_or("".into(), |p| num(p.1))
            );
        }
        let _ = writeln!(
            out,
            " {} |",
            c.points.last().map_or("".into(), |p| format!("{:.1}", p.3))
        );
    }
    let _ = writeln!(
        out,
        "\n| point | ours ρ | paper ρ | ours cost (FLOPs, baseline epochs) | paper cost (GPU time, baseline epochs) |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|");
    for (name, setting, epoch, paper, paper_cost) in PAPER_ECONAS {
        let ours = curves
            .iter()
            .find(|c| c.setting == setting)
            .and_then(|c| c.points.get(epoch));
        let _ = writeln!(
            out,
            "| {name} ({setting}, epoch {epoch}) | {} | {paper:.2} | {} | {paper_cost:.1} |",
            ours.map_or("not trained".into(), |p| num(p.1)),
            ours.map_or("".into(), |p| format!("{:.3}", p.2)),
        );
    }
    let _ = writeln!(out, "\n## Figure 2: correlation vs. cost per dataset\n");
    let _ = writeln!(
        out,
        "Cost in baseline training minibatches (196 per epoch of the real network): a proxy 1, \
         the vote 3, `train_12ep` 12 epochs, training reads their epochs times their FLOPs ratio. \
         |ρ| is plotted; the table keeps the sign. Sections with training reads cover only the \
         trained cells.\n"
    );
    let _ = writeln!(
        out,
        "| dataset | row | n | ρ | 95% CI | paper | cost | s/cell |"
    );
    let _ = writeln!(out, "|---|---|---:|---:|---|---:|---:|---:|");
    // The paper's dataset order: CIFAR-10, CIFAR-100, ImageNet16-120.
    let order = |name: &str| Dataset::ALL.iter().position(|d| d.name() == name);
    let mut rows: Vec<_> = table
        .rows
        .iter()
        .filter(|r| r.proxy != table::VOTE)
        .collect();
    rows.sort_by_key(|r| order(&r.dataset));
    for r in rows {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | [{}, {}] | {} | {:.3} | {} |",
            r.dataset,
            r.proxy,
            r.n,
            num(r.spearman),
            num(r.ci_low),
            num(r.ci_high),
            r.paper.map_or("".into(), |p| format!("{p:.3}")),
            r.cost_minibatches,
            r.seconds_per_cell.map_or("".into(), |s| format!("{s:.1}"))
        );
    }
    if !table.notes.is_empty() {
        let _ = writeln!(out, "\nNotes:\n");
        for note in &table.notes {
            let _ = writeln!(out, "- {note}");
        }
    }
    out
}
