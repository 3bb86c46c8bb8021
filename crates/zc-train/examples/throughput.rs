//! Training throughput, one thread: SGD steps of the authors' recipe on fixed random batches
//! (no data pipeline), the counterpart of `scripts/train_throughput.py` for the reference.
//!
//! Usage: `throughput CELLS_FILE SETTING [BATCH] [STEPS]`; prints one line per cell:
//! `ARCH SECONDS IMAGES_PER_SECOND` (after one warm-up step).

use std::time::Instant;

use zc_data::Minibatch;
use zc_proxies::{Nb201Network, Precision, Weights};
use zc_space::Cell;
use zc_train::{Recipe, Setting, Training};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: throughput CELLS_FILE SETTING [BATCH] [STEPS]";
    let cells = std::fs::read_to_string(args.get(1).ok_or(usage)?)?;
    let setting: Setting = args.get(2).ok_or(usage)?.parse()?;
    let batch: usize = args.get(3).map_or(Ok(256), |s| s.parse())?;
    let steps: usize = args.get(4).map_or(Ok(10), |s| s.parse())?;
    let r = setting.resolution;
    // Deterministic pseudo-random images and labels (timing does not depend on the values).
    let images: Vec<f32> = (0..batch * 3 * r * r)
        .map(|i| ((i as f32 * 0.618_034).fract() - 0.5) * 2.0)
        .collect();
    let minibatch = Minibatch {
        images,
        labels: (0..batch).map(|i| (i % 10) as i64).collect(),
        batch_size: batch,
        resolution: r,
    };
    let pool = rayon_single_thread()?;
    for line in cells.lines().filter(|l| !l.trim().is_empty()) {
        let cell: Cell = line.trim().parse()?;
        let net = Nb201Network::with_channels(cell, 10, setting.channels);
        let weights = Weights::init(&net, 0);
        let seconds = pool.install(|| {
            let mut training = Training::new(
                &net,
                &weights,
                Recipe::paper(40, batch).expect("valid"),
                Precision::F32,
            );
            training.step(&minibatch, 0.1);
            let start = Instant::now();
            for _ in 0..steps {
                training.step(&minibatch, 0.1);
            }
            start.elapsed().as_secs_f64()
        });
        println!(
            "{} {seconds:.4} {:.1}",
            line.trim(),
            (steps * batch) as f64 / seconds
        );
    }
    Ok(())
}

fn rayon_single_thread() -> Result<rayon::ThreadPool, rayon::ThreadPoolBuildError> {
    rayon::ThreadPoolBuilder::new().num_threads(1).build()
}
