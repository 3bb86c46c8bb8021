//! Figures, as PNG and SVG: the search curves (the paper's Figure 3 layout: one panel per
//! algorithm, each variant's mean best accuracy against trained models with its 95% band), and
//! a proxy comparison (correlations with intervals, and each score's ranks against the truth's).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::anyhow;
use plotters::coord::Shift;
use plotters::prelude::*;
use zc_search::{Algorithm, Variant};

use crate::compare::Section;
use crate::search::Curve;

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
