//! Cells with dead branches (nodes that cannot reach the output, a cell that ignores its input):
//! training skips and ties them so that no autodiff graph is left unreached (which kept every
//! step's graph alive and grew to 20 GB over 40 epochs of cell 8122), without changing a logit.

use std::path::Path;
use std::sync::Arc;

use burn::tensor::{DType, Device, Tensor, TensorData};
use zc_data::{Dataset, ImageSet};
use zc_proxies::network::forward::{ForwardConfig, NormMode, forward};
use zc_proxies::pass::inputs;
use zc_proxies::{Nb201Network, Precision, Weights};
use zc_space::Cell;
use zc_train::{Recipe, TrainData, Training};

const CELLS: [&str; 2] = [
    // Cell 8122: every edge out of node 0 is `none`; node 2 reaches nothing.
    "|none~0|+|nor_conv_1x1~0|nor_conv_3x3~1|+|none~0|nor_conv_3x3~1|none~2|",
    // Nodes 1 and 2 reach the output through `none` only.
    "|nor_conv_3x3~0|+|nor_conv_1x1~0|none~1|+|nor_conv_3x3~0|none~1|none~2|",
];

fn data() -> TrainData {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data");
    let set = ImageSet::read_shipped(&dir, Dataset::Cifar10).unwrap();
    TrainData::held_out(Arc::new(set), 20).unwrap()
}

#[test]
fn skipping_dead_branches_changes_no_logit() {
    let batch = data().test_batches(32, 8).remove(0);
    let device = Device::flex();
    for arch in CELLS {
        let cell: Cell = arch.parse().unwrap();
        let net = Nb201Network::with_channels(cell, 10, 4);
        let weights = Weights::init(&net, 3);
        let params: Vec<Tensor<1>> = net
            .params()
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let data = TensorData::new(weights.get(i).to_vec(), [p.numel()]);
                Tensor::from_data(data, (&device, DType::F64))
            })
            .collect();
        let x = inputs(&batch, &device, DType::F64);
        let logits = |skip| {
            let config = ForwardConfig {
                skip_dead_nodes: skip,
                ..ForwardConfig::new(NormMode::All)
            };
            forward(&net, &params, x.clone(), config)
                .logits
                .into_data()
                .try_to_vec::<f64>()
                .unwrap()
        };
        assert_eq!(logits(true), logits(false), "{arch}");
    }
}

#[test]
fn cells_with_dead_branches_train() {
    let data = data();
    for arch in CELLS {
        let cell: Cell = arch.parse().unwrap();
        let net = Nb201Network::with_channels(cell, 10, 4);
        let recipe = Recipe::paper(2, 200).unwrap();
        let mut training = Training::new(&net, &Weights::init(&net, 0), recipe, Precision::F32);
        let mut reports = Vec::new();
        training
            .run(&data, 8, 0, |r| {
                reports.push(*r);
                true
            })
            .unwrap();
        assert_eq!(reports.len(), 3, "{arch}");
        for r in &reports[1..] {
            assert!(
                r.train_loss.is_finite() && r.test.accuracy.is_finite(),
                "{arch}: {r:?}"
            );
        }
    }
}
