//! Figures, as PNG and SVG: the search curves (the paper's Figure 3 layout: one panel per
//! algorithm, each variant's mean best accuracy against trained models with its 95% band), a
//! proxy comparison (correlations with intervals, and each score's ranks against the truth's),
//! and the paper's Figures 1 and 2 (reduced training against cost; every proxy and baseline
//! against cost).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::anyhow;
use plotters::coord::Shift;
use plotters::prelude::*;
use zc_search::{Algorithm, Variant};

use crate::compare::Section;
use crate::econas::{PAPER_ECONAS, PAPER_FLOPS_RATIO, SettingCurve};
use crate::search::Curve;
use crate::table::{self, MINIBATCHES_PER_EPOCH, TableRow};

/// DejaVu Sans (shipped in `data/fonts` with its license), so that the PNG has text on a
/// machine without system fonts.
static FONT: &[u8] = include_bytes!("../../../data/fonts/DejaVuSans.ttf");
const FAMILY: &str = "sans-serif";

fn register_font() -> anyhow::Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED
        .get_or_init(|| plotters::style::register_font(FAMILY, FontStyle::Normal, FONT).is_ok());
    anyhow::ensure!(
        ok,
        "the shipped font data/fonts/DejaVuSans.ttf is not a valid font"
    );
    Ok(())
}

/// Draws the curves into `STEM.png` and `STEM.svg`, with `targets` as reference lines and
/// `y_label` on the vertical axes.
pub fn draw(
    curves: &[Curve],
    targets: &[f64],
    title: &str,
    y_label: &str,
    stem: &Path,
) -> anyhow::Result<()> {
    let figure = SearchCurves {
        curves,
        targets,
        title,
        y_label,
    };
    render(stem, (1200, 900), &figure)
}

/// A figure that draws on any plotters backend.
trait Figure {
    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
    ) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>>;
}

/// Draws `STEM.png` and `STEM.svg` of `size`, each into a temporary file renamed when
/// complete, so that an interrupted run leaves no half figure.
fn render(stem: &Path, size: (u32, u32), figure: &impl Figure) -> anyhow::Result<()> {
    register_font()?;
    let with = |suffix: &str| {
        let mut name = stem.as_os_str().to_owned();
        name.push(suffix);
        PathBuf::from(name)
    };
    let (png, svg) = (with(".png"), with(".svg"));
    let (png_tmp, svg_tmp) = (with(".tmp.png"), with(".tmp.svg"));
    {
        let root = BitMapBackend::new(&png_tmp, size).into_drawing_area();
        figure
            .draw(&root)
            .map_err(|e| anyhow!("drawing {}: {e}", png.display()))?;
        root.present()
            .map_err(|e| anyhow!("writing {}: {e}", png.display()))?;
    }
    {
        let root = SVGBackend::new(&svg_tmp, size).into_drawing_area();
        figure
            .draw(&root)
            .map_err(|e| anyhow!("drawing {}: {e}", svg.display()))?;
        root.present()
            .map_err(|e| anyhow!("writing {}: {e}", svg.display()))?;
    }
    std::fs::rename(&png_tmp, &png)?;
    std::fs::rename(&svg_tmp, &svg)?;
    Ok(())
}

struct SearchCurves<'a> {
    curves: &'a [Curve],
    targets: &'a [f64],
    title: &'a str,
    y_label: &'a str,
}

impl Figure for SearchCurves<'_> {
    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
    ) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
        panels(root, self.curves, self.targets, self.title, self.y_label)
    }
}

/// Draws a comparison section into `STEM.png` and `STEM.svg`: each score's Spearman ρ with
/// its interval (bars), and one scatter per score of its rank against the accuracy's rank.
pub fn draw_comparison(section: &Section, title: &str, stem: &Path) -> anyhow::Result<()> {
    render(stem, (1500, 900), &ComparisonFigure { section, title })
}

struct ComparisonFigure<'a> {
    section: &'a Section,
    title: &'a str,
}

impl Figure for ComparisonFigure<'_> {
    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
    ) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
        let s = self.section;
        root.fill(&WHITE)?;
        let root = root.titled(self.title, (FAMILY, 24))?;
        let (bars, scatters) = root.split_horizontally(520);
        // Bars: ρ per score with its 95% interval; new proxies in colour, baselines in grey.
        let n = s.proxies.len();
        let low = s
            .proxies
            .iter()
            .map(|p| p.spearman_ci.0.min(p.spearman))
            .filter(|v| v.is_finite())
            .fold(0.0f64, f64::min);
        let mut chart = ChartBuilder::on(&bars)
            .caption("Spearman ρ (95% CI)", (FAMILY, 18))
            .margin(12)
            .x_label_area_size(120)
            .y_label_area_size(50)
            .build_cartesian_2d((0..n).into_segmented(), (low.min(0.0) - 0.05)..1.0)?;
        let names: Vec<String> = s.proxies.iter().map(|p| p.proxy.clone()).collect();
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(n.max(1))
            .x_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) => names.get(*i).cloned().unwrap_or_default(),
                _ => String::new(),
            })
            .label_style((FAMILY, 13))
            .x_label_style((FAMILY, 13).into_font().transform(FontTransform::Rotate90))
            .y_desc("ρ")
            .draw()?;
        for (i, p) in s.proxies.iter().enumerate() {
            let color = if p.role == "new" {
                COLORS[i % COLORS.len()]
            } else {
                RGBColor(150, 150, 150)
            };
            if p.spearman.is_finite() {
                let mut bar = Rectangle::new(
                    [
                        (SegmentValue::Exact(i), 0.0),
                        (SegmentValue::Exact(i + 1), p.spearman),
                    ],
                    color.filled(),
                );
                bar.set_margin(0, 0, 6, 6);
                chart.draw_series(std::iter::once(bar))?;
            }
            let (a, b) = p.spearman_ci;
            if a.is_finite() && b.is_finite() {
                chart.draw_series(std::iter::once(PathElement::new(
                    vec![
                        (SegmentValue::CenterOf(i), a),
                        (SegmentValue::CenterOf(i), b),
                    ],
                    BLACK.stroke_width(2),
                )))?;
            }
        }
        // Scatters: rank of the score against rank of the accuracy, one panel per score.
        let columns = 3;
        let rows = n.div_ceil(columns).max(1);
        let grid = scatters.split_evenly((rows, columns));
        let cells = s.common as f64;
        for ((area, p), i) in grid.iter().zip(&s.proxies).zip(0..) {
            let Some((x, y)) = s.ranks.get(&p.proxy) else {
                continue;
            };
            let mut chart = ChartBuilder::on(area)
                .caption(format!("{} (ρ {:.3})", p.proxy, p.spearman), (FAMILY, 15))
                .margin(8)
                .x_label_area_size(28)
                .y_label_area_size(40)
                .build_cartesian_2d(0f64..cells, 0f64..cells)?;
            chart
                .configure_mesh()
                .disable_mesh()
                .x_labels(3)
                .y_labels(3)
                .x_desc("proxy rank")
                .y_desc("accuracy rank")
                .label_style((FAMILY, 11))
                .axis_desc_style((FAMILY, 11))
                .x_label_formatter(&|v| format!("{v:.0}"))
                .y_label_formatter(&|v| format!("{v:.0}"))
                .draw()?;
            let color = if p.role == "new" {
                COLORS[i % COLORS.len()]
            } else {
                RGBColor(110, 110, 110)
            };
            chart.draw_series(
                x.iter()
                    .zip(y)
                    .map(|(&a, &b)| Circle::new((a, b), 1, color.mix(0.5).filled())),
            )?;
        }
        Ok(())
    }
}

const COLORS: [RGBColor; 5] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
];

fn panels<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    curves: &[Curve],
    targets: &[f64],
    title: &str,
    y_label: &str,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&WHITE)?;
    let root = root.titled(title, (FAMILY, 24))?;
    let budget = curves.iter().map(|c| c.mean.len()).max().unwrap_or(1);
    // The y range: from the worst mean after 10 models to just above the best band.
    let early = budget.min(10) - 1;
    let low = curves
        .iter()
        .map(|c| c.mean[early])
        .fold(f64::INFINITY, f64::min);
    let high = curves
        .iter()
        .flat_map(|c| c.mean.iter().zip(&c.ci95).map(|(m, h)| m + h))
        .fold(f64::NEG_INFINITY, f64::max);
    let (y_low, y_high) = ((low * 2.0).floor() / 2.0, (high * 10.0).ceil() / 10.0 + 0.1);
    let present: Vec<Algorithm> = Algorithm::ALL
        .into_iter()
        .filter(|a| curves.iter().any(|c| c.algorithm == *a))
        .collect();
    let grid = root.split_evenly((2, present.len().div_ceil(2).max(1)));
    for (area, &algorithm) in grid.iter().zip(&present) {
        let mut chart = ChartBuilder::on(area)
            .caption(algorithm.name().to_uppercase(), (FAMILY, 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(55)
            .build_cartesian_2d(0f64..budget as f64, y_low..y_high)?;
        chart
            .configure_mesh()
            .x_desc("trained models")
            .y_desc(y_label)
            .x_label_formatter(&|x| format!("{x:.0}"))
            .label_style((FAMILY, 14))
            .axis_desc_style((FAMILY, 15))
            .draw()?;
        for &t in targets.iter().filter(|&&t| t > y_low && t < y_high) {
            chart.draw_series(LineSeries::new(
                [(0.0, t), (budget as f64, t)],
                BLACK.mix(0.3).stroke_width(1),
            ))?;
        }
        let mine: Vec<&Curve> = curves.iter().filter(|c| c.algorithm == algorithm).collect();
        for (k, c) in mine.iter().enumerate() {
            let color = variant_color(c.variant, k);
            let clip = |v: f64| v.clamp(y_low, y_high);
            let upper = c
                .mean
                .iter()
                .zip(&c.ci95)
                .enumerate()
                .map(|(i, (m, h))| ((i + 1) as f64, clip(m + h)));
            let lower = c
                .mean
                .iter()
                .zip(&c.ci95)
                .enumerate()
                .map(|(i, (m, h))| ((i + 1) as f64, clip(m - h)));
            let band: Vec<(f64, f64)> = upper.chain(lower.rev()).collect();
            chart.draw_series(std::iter::once(Polygon::new(
                band,
                color.mix(0.18).filled(),
            )))?;
            chart
                .draw_series(LineSeries::new(
                    c.mean
                        .iter()
                        .enumerate()
                        .map(|(i, &m)| ((i + 1) as f64, clip(m))),
                    color.stroke_width(2),
                ))?
                .label(c.variant.to_string())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .label_font((FAMILY, 14))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.4))
            .draw()?;
    }
    Ok(())
}

/// Black for the baseline, palette colours for the proxy variants.
fn variant_color(variant: Variant, k: usize) -> RGBColor {
    if variant == Variant::BASELINE {
        BLACK
    } else {
        COLORS[k % COLORS.len()]
    }
}

/// Figure 1: Spearman ρ of each reduced setting's test accuracy against epochs, training FLOPs
/// (baseline epochs, log) and measured seconds per cell (log), with the paper's econas and
/// econas+ as reference markers, into `STEM.png` and `STEM.svg`.
pub fn draw_figure1(curves: &[SettingCurve], data: &str, stem: &Path) -> anyhow::Result<()> {
    render(stem, (1800, 650), &Figure1 { curves, data })
}

struct Figure1<'a> {
    curves: &'a [SettingCurve],
    data: &'a str,
}

/// The range of `values` (positive, for a log axis), widened a little.
fn log_range(values: impl Iterator<Item = f64>) -> std::ops::Range<f64> {
    let (low, high) = values
        .filter(|v| v.is_finite() && *v > 0.0)
        .fold((f64::INFINITY, 0.0f64), |(l, h), v| (l.min(v), h.max(v)));
    if low.is_finite() {
        low / 1.5..high * 1.5
    } else {
        0.1..10.0
    }
}

impl Figure for Figure1<'_> {
    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
    ) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
        root.fill(&WHITE)?;
        let title = format!(
            "Reduced training on CIFAR-10: Spearman ρ vs. cost ({})",
            self.data
        );
        let root = root.titled(&title, (FAMILY, 18))?;
        let panels = root.split_evenly((1, 3));
        let low = self
            .curves
            .iter()
            .flat_map(|c| c.points.iter().map(|p| p.1))
            .filter(|v| v.is_finite())
            .fold(0.0f64, f64::min);
        let y = (low - 0.05).min(0.0)..1.0;
        let epochs = self
            .curves
            .iter()
            .map(|c| c.points.len())
            .max()
            .unwrap_or(1) as f64;
        // Panel 1: against epochs.
        let mut chart = ChartBuilder::on(&panels[0])
            .caption("vs. epoch", (FAMILY, 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d(0f64..epochs, y.clone())?;
        chart
            .configure_mesh()
            .x_desc("epoch")
            .y_desc("Spearman ρ")
            .label_style((FAMILY, 14))
            .axis_desc_style((FAMILY, 15))
            .draw()?;
        for (k, c) in self.curves.iter().enumerate() {
            let color = COLORS[k % COLORS.len()];
            chart
                .draw_series(LineSeries::new(
                    c.points
                        .iter()
                        .filter(|p| p.1.is_finite())
                        .map(|p| (p.0 as f64, p.1)),
                    color.stroke_width(2),
                ))?
                .label(format!("{} ({} cells)", c.setting, c.cells))
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
        }
        for (name, _, epoch, rho, _) in PAPER_ECONAS {
            chart.draw_series(std::iter::once(
                EmptyElement::at((epoch as f64, rho))
                    + TriangleMarker::new((0, 0), 7, BLACK.filled())
                    + Text::new(format!("paper {name}"), (8, -6), (FAMILY, 13)),
            ))?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .label_font((FAMILY, 14))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.4))
            .draw()?;
        // Panels 2 and 3: against FLOPs and seconds (log axes, from epoch 1).
        let flops = log_range(
            self.curves
                .iter()
                .flat_map(|c| c.points.iter().map(|p| p.2)),
        );
        let paper_flops = |setting: &str, epoch: usize| {
            PAPER_FLOPS_RATIO
                .iter()
                .find(|(s, _)| *s == setting)
                .map(|(_, r)| r * epoch as f64)
        };
        let seconds = log_range(
            self.curves
                .iter()
                .flat_map(|c| c.points.iter().map(|p| p.3)),
        );
        for (panel, (caption, x_desc, range, pick)) in [
            (
                "vs. training FLOPs",
                "FLOPs (baseline r32c16 epochs, log)",
                flops,
                2usize,
            ),
            (
                "vs. measured runtime",
                "seconds per cell (one core, log)",
                seconds,
                3,
            ),
        ]
        .into_iter()
        .enumerate()
        {
            let mut chart = ChartBuilder::on(&panels[panel + 1])
                .caption(caption, (FAMILY, 18))
                .margin(12)
                .x_label_area_size(40)
                .y_label_area_size(50)
                .build_cartesian_2d(range.log_scale(), y.clone())?;
            chart
                .configure_mesh()
                .x_desc(x_desc)
                .y_desc("Spearman ρ")
                .label_style((FAMILY, 14))
                .axis_desc_style((FAMILY, 15))
                .draw()?;
            for (k, c) in self.curves.iter().enumerate() {
                let color = COLORS[k % COLORS.len()];
                chart.draw_series(LineSeries::new(
                    c.points
                        .iter()
                        .skip(1)
                        .filter(|p| p.1.is_finite())
                        .map(|p| (if pick == 2 { p.2 } else { p.3 }, p.1)),
                    color.stroke_width(2),
                ))?;
            }
            if pick == 2 {
                for (name, setting, epoch, rho, _) in PAPER_ECONAS {
                    if let Some(x) = paper_flops(setting, epoch) {
                        chart.draw_series(std::iter::once(
                            EmptyElement::at((x, rho))
                                + TriangleMarker::new((0, 0), 7, BLACK.filled())
                                + Text::new(format!("paper {name}"), (8, -6), (FAMILY, 13)),
                        ))?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// Figure 2: every row's |ρ| against its cost in baseline minibatches (log), one panel per
/// dataset: proxies, the vote's mean rank, `train_12ep`, the training reads, and the paper's
/// values as hollow reference markers, into `STEM.png` and `STEM.svg`.
pub fn draw_figure2(rows: &[TableRow], stem: &Path) -> anyhow::Result<()> {
    render(stem, (1800, 650), &Figure2 { rows })
}

struct Figure2<'a> {
    rows: &'a [TableRow],
}

impl Figure for Figure2<'_> {
    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
    ) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
        root.fill(&WHITE)?;
        let root = root.titled(
            "Spearman |ρ| vs. cost per cell (filled: ours with 95% CI; hollow: the paper's)",
            (FAMILY, 18),
        )?;
        // The paper's order: CIFAR-10, CIFAR-100, ImageNet16-120.
        let datasets: Vec<&str> = zc_data::Dataset::ALL
            .iter()
            .map(|d| d.name())
            .filter(|name| self.rows.iter().any(|r| r.dataset == *name))
            .collect();
        let panels = root.split_evenly((1, datasets.len().max(1)));
        for (area, dataset) in panels.iter().zip(&datasets) {
            let rows: Vec<&TableRow> = self
                .rows
                .iter()
                .filter(|r| r.dataset == *dataset && r.proxy != table::VOTE)
                .collect();
            let n = rows.first().map_or(0, |r| r.n + r.nan_count + r.missing);
            let mut chart = ChartBuilder::on(area)
                .caption(format!("{dataset} ({n} cells)"), (FAMILY, 18))
                .margin(12)
                .x_label_area_size(40)
                .y_label_area_size(50)
                .build_cartesian_2d((0.5f64..5000.0).log_scale(), 0f64..1.0)?;
            chart
                .configure_mesh()
                .x_desc("cost (baseline training minibatches, log)")
                .y_desc("Spearman |ρ|")
                .label_style((FAMILY, 14))
                .axis_desc_style((FAMILY, 15))
                .draw()?;
            // Proxies share cost 1: spread their labels vertically by value.
            for (k, r) in rows.iter().enumerate() {
                if !r.spearman.is_finite() {
                    continue;
                }
                let color = COLORS[k % COLORS.len()];
                let x = r.cost_minibatches;
                let (a, b) = (r.ci_low.abs(), r.ci_high.abs());
                if r.ci_low.is_finite() && r.ci_high.is_finite() && r.ci_low * r.ci_high > 0.0 {
                    chart.draw_series(std::iter::once(PathElement::new(
                        vec![(x, a.min(b)), (x, a.max(b))],
                        color.mix(0.6).stroke_width(2),
                    )))?;
                }
                let name = r.proxy.clone();
                chart.draw_series(std::iter::once(
                    EmptyElement::at((x, r.spearman.abs()))
                        + Circle::new((0, 0), 5, color.filled())
                        + Text::new(name, (8, -5), (FAMILY, 12)),
                ))?;
                if let Some(p) = r.paper {
                    chart.draw_series(std::iter::once(Circle::new(
                        (x, p),
                        6,
                        color.stroke_width(2),
                    )))?;
                }
            }
            if *dataset == "cifar10" {
                for (name, _, _, rho, cost) in PAPER_ECONAS {
                    chart.draw_series(std::iter::once(
                        EmptyElement::at((cost * MINIBATCHES_PER_EPOCH, rho))
                            + Circle::new((0, 0), 6, BLACK.stroke_width(2))
                            + Text::new(format!("paper {name}"), (8, 6), (FAMILY, 12)),
                    ))?;
                }
            }
        }
        Ok(())
    }
}
