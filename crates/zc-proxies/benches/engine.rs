//! Seconds per cell for the eight proxies of the paper's comparison (grad_norm, snip, grasp,
//! fisher, jacob_cov, plain, synflow, synflow_bn), CIFAR-10, batch 64, on the `flex` backend.
//! Run with `RAYON_NUM_THREADS=1 cargo bench -p zc-proxies` for the one-thread figures.

use std::path::PathBuf;

use criterion::{Criterion, criterion_group, criterion_main};
use zc_data::{DataLoad, Dataset, ImageSet, MinibatchSampler};
use zc_proxies::proxy::{self, Proxy};
use zc_proxies::{Backend, Engine, Nb201Network, Precision, Weights};
use zc_space::{Cell, sample_cells};

const PROXIES: &str = "grad_norm,snip,grasp,fisher,jacob_cov,plain,synflow,synflow_bn";

fn setup() -> (Engine, MinibatchSampler, Vec<&'static dyn Proxy>) {
    let data = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../data"));
    let images = ImageSet::read_shipped(&data, Dataset::Cifar10).expect("shipped CIFAR-10 sample");
    let sampler =
        MinibatchSampler::new(images, DataLoad::Random { batch_size: 64 }, 0).expect("sampler");
    (
        Engine::new(Backend::Flex, Precision::F32),
        sampler,
        proxy::parse_list(PROXIES).expect("proxies"),
    )
}

fn score(engine: &Engine, sampler: &MinibatchSampler, proxies: &[&dyn Proxy], cell: Cell) {
    let network = Nb201Network::new(cell, 10);
    let weights = Weights::init(&network, 0);
    let batch = sampler.batch(u64::from(cell.code()));
    engine
        .score(&network, &weights, &batch, proxies)
        .expect("scores");
}

fn bench(c: &mut Criterion) {
    let (engine, sampler, proxies) = setup();
    let dense: Cell = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"
        .parse()
        .expect("cell");
    let cheap: Cell =
        "|avg_pool_3x3~0|+|skip_connect~0|none~1|+|none~0|skip_connect~1|avg_pool_3x3~2|"
            .parse()
            .expect("cell");
    let sample = sample_cells(2021, 20).expect("sample");
    let mut group = c.benchmark_group("eight_proxies");
    group.sample_size(10);
    group.bench_function("dense_all_3x3", |b| {
        b.iter(|| score(&engine, &sampler, &proxies, dense))
    });
    group.bench_function("cheap", |b| {
        b.iter(|| score(&engine, &sampler, &proxies, cheap))
    });
    // One iteration scores the 20 cells: divide the median by 20 for seconds per cell.
    group.bench_function("sample_20_cells", |b| {
        b.iter(|| {
            sample
                .iter()
                .for_each(|&cell| score(&engine, &sampler, &proxies, cell))
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
