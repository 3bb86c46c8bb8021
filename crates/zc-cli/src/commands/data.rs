//! `zc data check`: validate the shipped data.

use std::path::Path;

use anyhow::Context;
use zc_benchmark::{GroundTruth, Metric};
use zc_data::{Dataset, ImageSet};

/// Validates the ground-truth table and every image file, printing what each holds.
pub fn check(data_dir: &Path) -> anyhow::Result<()> {
    super::outln!("data directory {}", data_dir.display())?;
    let table = GroundTruth::load_shipped(data_dir)?;
    let unreachable = (0..table.len())
        .filter(|&i| !table.is_output_reachable(i))
        .count();
    super::outln!(
        "ok  {} cells, {unreachable} with unreachable output",
        table.len()
    )?;
    for dataset in Dataset::ALL {
        let (i, acc) = table.best(dataset, Metric::Test)?;
        super::outln!(
            "ok  {:<15} best test accuracy {acc:.2} at index {i}",
            dataset.name()
        )?;
    }
    for dataset in Dataset::ALL {
        let images = ImageSet::read_shipped(data_dir, dataset)
            .with_context(|| format!("images of {}", dataset.name()))?;
        let counts = images.class_counts();
        let present = counts.iter().filter(|&&c| c > 0).count();
        super::outln!(
            "ok  {:<15} {} images {}x{}, {present}/{} classes, {}..{} per class",
            dataset.name(),
            images.len(),
            images.resolution(),
            images.resolution(),
            dataset.num_classes(),
            counts.iter().min().unwrap_or(&0),
            counts.iter().max().unwrap_or(&0)
        )?;
    }
    super::outln!("all data files are valid")?;
    Ok(())
}
