//! The search-curve figure (the paper's Figure 3 layout): one panel per algorithm, each
//! variant's mean best accuracy against trained models with its 95% band, as PNG and SVG.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::anyhow;
use plotters::coord::Shift;
use plotters::prelude::*;
use zc_search::{Algorithm, Variant};

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
    register_font()?;
    let size = (1200, 900);
    let with = |suffix: &str| {
        let mut name = stem.as_os_str().to_owned();
        name.push(suffix);
        PathBuf::from(name)
    };
    let (png, svg) = (with(".png"), with(".svg"));
    // Draw into temporary files and rename, so that an interrupted run leaves no half figure.
    let (png_tmp, svg_tmp) = (with(".tmp.png"), with(".tmp.svg"));
    {
        let root = BitMapBackend::new(&png_tmp, size).into_drawing_area();
        panels(&root, curves, targets, title, y_label)
            .map_err(|e| anyhow!("drawing {}: {e}", png.display()))?;
        root.present()
            .map_err(|e| anyhow!("writing {}: {e}", png.display()))?;
    }
    {
        let root = SVGBackend::new(&svg_tmp, size).into_drawing_area();
        panels(&root, curves, targets, title, y_label)
            .map_err(|e| anyhow!("drawing {}: {e}", svg.display()))?;
        root.present()
            .map_err(|e| anyhow!("writing {}: {e}", svg.display()))?;
    }
    std::fs::rename(&png_tmp, &png)?;
    std::fs::rename(&svg_tmp, &svg)?;
    Ok(())
}

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
    const COLORS: [RGBColor; 5] = [
        RGBColor(31, 119, 180),
        RGBColor(214, 39, 40),
        RGBColor(44, 160, 44),
        RGBColor(255, 127, 14),
        RGBColor(148, 103, 189),
    ];
    if variant == Variant::BASELINE {
        BLACK
    } else {
        COLORS[k % COLORS.len()]
    }
}
