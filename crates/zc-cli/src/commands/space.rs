//! `zc space`: inspect cells of the NB201 search space.

use std::path::Path;

use anyhow::bail;
use zc_benchmark::GroundTruth;
use zc_data::Dataset;

/// Arguments of `zc space`.
#[derive(clap::Args)]
pub struct Args {
    /// A cell: architecture string (`|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`) or official index.
    cell: Option<String>,
    /// Instead, print N cells sampled uniformly (without replacement).
    #[arg(long, value_name = "N", conflicts_with = "cell")]
    sample: Option<usize>,
    /// Seed of the sample.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

/// Runs `zc space`.
pub fn run(data_dir: &Path, args: Args) -> anyhow::Result<()> {
    let table = GroundTruth::load_shipped(data_dir)?;
    match (args.cell, args.sample) {
        (Some(text), _) => show(&table, &text),
        (None, Some(n)) => {
            super::outln!("{:>6}  {:>7}  {:>7}  arch", "index", "c10", "c100")?;
            for cell in zc_space::sample_cells(args.seed, n)? {
                let i = table.index_of(cell);
                let acc = |d| {
                    table
                        .accuracy(i, d, zc_benchmark::Metric::Test)
                        .unwrap_or(f64::NAN)
                };
                super::outln!(
                    "{i:>6}  {:>7.2}  {:>7.2}  {cell}",
                    acc(Dataset::Cifar10),
                    acc(Dataset::Cifar100)
                )?;
            }
            Ok(())
        }
        (None, None) => bail!("give a cell (architecture string or index) or --sample N"),
    }
}

fn show(table: &GroundTruth, text: &str) -> anyhow::Result<()> {
    let cell = match super::CellArg::parse(text)? {
        super::CellArg::Index(index) => table.cell(index)?,
        super::CellArg::Arch(cell) => cell,
    };
    let index = table.index_of(cell);
    super::outln!("arch        {cell}")?;
    super::outln!("index       {index}")?;
    super::outln!(
        "code        {} (base-5, not the official index)",
        cell.code()
    )?;
    super::outln!(
        "reachable   {} (output depends on the input)",
        cell.is_output_reachable()
    )?;
    super::outln!(
        "\n{:<15} {:>10} {:>14}  accuracies (%)",
        "dataset",
        "#params",
        "FLOPs"
    )?;
    for dataset in Dataset::ALL {
        let accs: Vec<String> = table
            .all_accuracies(index, dataset)
            .iter()
            .map(|(m, a)| format!("{m} {a:.2}"))
            .collect();
        super::outln!(
            "{:<15} {:>10} {:>14}  {}",
            dataset.name(),
            cell.param_count(dataset.num_classes()),
            cell.flops(dataset.num_classes(), dataset.resolution()),
            accs.join(", ")
        )?;
    }
    super::outln!("\nneighbours (one edit):")?;
    for n in cell.neighbours() {
        super::outln!("  {:>6}  {n}", table.index_of(n))?;
    }
    Ok(())
}
