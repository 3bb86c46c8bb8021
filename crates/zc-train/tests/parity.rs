//! Training parity with the authors' code: k = 6 SGD steps (3 epochs of 2, so the cosine
//! schedule moves) of their recipe from the same initial weights on the same minibatches, for
//! three cells at r8c4 and r32c16 (`scripts/train_reference.py` made the fixtures with the
//! reference's `nasbench2` network and torch's SGD and CosineAnnealingLR).
//!
//! float64 is the exact check: losses at every step, every weight and BatchNorm running
//! statistic after the k steps, and eval-mode logits. float32 is held to the exact (float64)
//! trajectory within the reference's own float32 error: on cells whose float32 training strays
//! (the reference's own float32 loss differs from its float64 loss by up to 6e-3 after one step
//! on the all-3x3 cell, from rounding amplified by the first update), no float32 implementation
//! can follow another to 1e-4. So the first step is held to 1e-4, and the run to 10x the
//! reference's own largest float32 error.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use safetensors::{Dtype, SafeTensors};
use serde_json::Value;
use zc_data::{Dataset, ImageSet, Minibatch};
use zc_proxies::network::ParamRole;
use zc_proxies::{Nb201Network, Precision, Weights};
use zc_space::Cell;
use zc_train::resize::resize_planar;
use zc_train::{Recipe, TrainData, Training};

/// Relative tolerance of float64 losses, running statistics and eval logits (the fixture's
/// float64 run uses the float32-rounded momentum and weight decay burn's optimiser holds).
const TOLERANCE_F64: f64 = 1e-9;
/// Relative tolerance of float32 losses where the reference's float32 is that close to exact.
const TOLERANCE_F32: f64 = 1e-4;

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data")
}

fn fixtures() -> PathBuf {
    data_dir().join("fixtures/train")
}

fn expected() -> Value {
    let text = std::fs::read_to_string(fixtures().join("expected.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The fixture's initial weights: `(2u - 1) / sqrt(fan_in)`, `u` from a hash of the
/// parameter's name and the element index (the same function as the fixture script's).
fn hash_uniform(name: &str, numel: usize, fan_in: usize) -> Vec<f32> {
    let mut base = 0xcbf2_9ce4_8422_2325u64;
    for b in name.bytes() {
        base = (base ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    let splitmix = |x: u64| {
        let x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        let x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        x ^ (x >> 31)
    };
    let bound = 1.0 / (fan_in as f64).sqrt();
    (0..numel as u64)
        .map(|i| {
            let u = (splitmix(base ^ i) >> 40) as f64 / f64::from(1u32 << 24);
            ((2.0 * u - 1.0) * bound) as f32
        })
        .collect()
}

fn initial_weights(net: &Nb201Network) -> Weights {
    Weights::from_fn(net, |_, p| match p.role {
        ParamRole::Weight { fan_in } | ParamRole::Bias { fan_in } => {
            hash_uniform(&p.name, p.numel(), fan_in)
        }
        ParamRole::BnGamma => vec![1.0; p.numel()],
        ParamRole::BnBeta => vec![0.0; p.numel()],
    })
    .unwrap()
}

fn tensors(path: &Path) -> HashMap<String, Vec<f64>> {
    let bytes = std::fs::read(path).unwrap();
    let file = SafeTensors::deserialize(&bytes).unwrap();
    file.tensors()
        .into_iter()
        .map(|(name, view)| {
            let data = view.data();
            let values = match view.dtype() {
                Dtype::F32 => data
                    .chunks_exact(4)
                    .map(|b| f64::from(f32::from_le_bytes(b.try_into().unwrap())))
                    .collect(),
                Dtype::F64 => data
                    .chunks_exact(8)
                    .map(|b| f64::from_le_bytes(b.try_into().unwrap()))
                    .collect(),
                Dtype::I64 => data
                    .chunks_exact(8)
                    .map(|b| i64::from_le_bytes(b.try_into().unwrap()) as f64)
                    .collect(),
                Dtype::U8 => data.iter().map(|&b| f64::from(b)).collect(),
                other => panic!("{name}: unexpected dtype {other:?}"),
            };
            (name, values)
        })
        .collect()
}

fn minibatch(t: &HashMap<String, Vec<f64>>, inputs: &str, targets: &str, r: usize) -> Minibatch {
    let labels: Vec<i64> = t[targets].iter().map(|&v| v as i64).collect();
    Minibatch {
        images: t[inputs].iter().map(|&v| v as f32).collect(),
        batch_size: labels.len(),
        labels,
        resolution: r,
    }
}

/// max |a - b|.
fn max_abs_diff(ours: &[f64], theirs: &[f64]) -> f64 {
    assert_eq!(ours.len(), theirs.len());
    ours.iter()
        .zip(theirs)
        .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()))
}

/// max |a - b| / max |b|: the error relative to the tensor's scale (absolute for a zero tensor).
fn relative_error(ours: &[f64], theirs: &[f64]) -> f64 {
    let scale = theirs.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let diff = max_abs_diff(ours, theirs);
    if scale == 0.0 { diff } else { diff / scale }
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

/// Trains the fixture's run in `precision`; returns the training and its losses.
fn train<'a>(
    net: &'a Nb201Network,
    run: &Value,
    spec: &Value,
    batches: &HashMap<String, Vec<f64>>,
    precision: Precision,
) -> (Training<'a>, Vec<f64>) {
    let r = run["resolution"].as_u64().unwrap() as usize;
    let (epochs, steps) = (
        spec["epochs"].as_u64().unwrap() as usize,
        spec["steps_per_epoch"].as_u64().unwrap() as usize,
    );
    let recipe = Recipe::paper(epochs, spec["batch"].as_u64().unwrap() as usize).unwrap();
    let mut training = Training::new(net, &initial_weights(net), recipe, precision);
    let mut schedule = training.schedule().unwrap();
    let mut losses = Vec::new();
    for epoch in 0..epochs {
        let lr = schedule.step().base();
        let want_lr = run["lrs"][epoch].as_f64().unwrap();
        assert!((lr - want_lr).abs() <= 1e-12, "lr {lr} vs {want_lr}");
        for step in 0..steps {
            let s = epoch * steps + step;
            let batch = minibatch(batches, &format!("inputs_{s}"), &format!("targets_{s}"), r);
            losses.push(training.step(&batch, lr));
        }
    }
    (training, losses)
}

fn check_run(key: &str, run: &Value, spec: &Value) {
    let r = run["resolution"].as_u64().unwrap() as usize;
    let c = run["channels"].as_u64().unwrap() as usize;
    let cell: Cell = run["arch"].as_str().unwrap().parse().unwrap();
    let setting = format!("r{r}c{c}");
    let batches = tensors(&fixtures().join(format!("{setting}_batches.safetensors")));
    let eval = minibatch(&batches, "eval_inputs", "eval_targets", r);
    let net = Nb201Network::with_channels(cell, 10, c);
    let exact = &run["f64"];

    // float64: the exact check.
    let (training, losses) = train(&net, run, spec, &batches, Precision::F64);
    let want = floats(&exact["losses"]);
    for (s, (ours, theirs)) in losses.iter().zip(&want).enumerate() {
        let rel = (ours - theirs).abs() / theirs.abs();
        assert!(
            rel <= TOLERANCE_F64,
            "{key} f64: loss at step {s}: {ours} vs {theirs} ({rel:.1e})"
        );
    }
    let cell_key = key.split_once('_').unwrap().1;
    let reference = tensors(&fixtures().join(format!("{setting}_{cell_key}.safetensors")));
    let strides = &run["strides"];
    let sampled = |name: &str, values: Vec<f64>| -> Vec<f64> {
        let stride = strides[name].as_u64().unwrap() as usize;
        values.into_iter().step_by(stride).collect()
    };
    let values = training.parameters();
    let mut worst = (0.0f64, String::new());
    for (i, p) in net.params().iter().enumerate() {
        let ours = sampled(&p.name, values[i].clone());
        let err = relative_error(&ours, &reference[&p.name]);
        if err > worst.0 {
            worst = (err, p.name.clone());
        }
    }
    let gammas = net
        .params()
        .iter()
        .filter(|p| p.role == ParamRole::BnGamma)
        .map(|p| p.name.trim_end_matches(".weight").to_owned());
    for (module, (mean, var)) in gammas.zip(training.running_stats()) {
        // A running mean can be all rounding noise (the dense cell's output channels sum
        // zero-mean BatchNorm outputs): it is measured against the channels' spread.
        let spread = reference[&format!("{module}.running_var")]
            .iter()
            .fold(0.0f64, |m, v| m.max(v.sqrt()));
        for (suffix, ours, floor) in [("running_mean", mean, spread), ("running_var", var, 0.0)] {
            let name = format!("{module}.{suffix}");
            let theirs = &reference[&name];
            let scale = theirs.iter().fold(floor, |m, v| m.max(v.abs()));
            let err = max_abs_diff(&sampled(&name, ours), theirs) / scale;
            if err > worst.0 {
                worst = (err, name);
            }
        }
    }
    let logits_err = relative_error(&training.logits(&eval), &floats(&exact["eval_logits"]));
    let metrics = training.evaluate(std::slice::from_ref(&eval));
    eprintln!(
        "{key} f64: worst tensor {} at {:.1e}, eval logits {logits_err:.1e}",
        worst.1, worst.0
    );
    assert!(
        worst.0 <= TOLERANCE_F64,
        "{key} f64: {} differs by {:.1e} of its scale",
        worst.1,
        worst.0
    );
    assert!(
        logits_err <= TOLERANCE_F64,
        "{key} f64: eval logits differ by {logits_err:.1e}"
    );
    let correct = (metrics.accuracy * eval.batch_size as f64).round() as u64;
    assert_eq!(correct, exact["eval_correct"].as_u64().unwrap(), "{key}");
    let eval_loss = exact["eval_loss"].as_f64().unwrap();
    assert!(
        (metrics.loss - eval_loss).abs() <= TOLERANCE_F64 * eval_loss,
        "{key}"
    );

    // float32: the first step (the initial weights) within 1e-4 of exact; over the run, no
    // further from exact than 10x the reference's own float32 error. Per step would be too
    // strict: on a cell whose float32 training strays, the step at which rounding is first
    // amplified is chance (on r8c4_conv1x1 the reference's error jumps 40x from step 2 to 3;
    // ours, with another summation order, jumps a step earlier).
    let (_, losses) = train(&net, run, spec, &batches, Precision::F32);
    let theirs_f32 = floats(&run["f32"]["losses"]);
    let relative = |v: &f64, exact: &f64| (v - exact).abs() / exact;
    let ours_err: Vec<f64> = losses
        .iter()
        .zip(&want)
        .map(|(v, e)| relative(v, e))
        .collect();
    let theirs_err: Vec<f64> = theirs_f32
        .iter()
        .zip(&want)
        .map(|(v, e)| relative(v, e))
        .collect();
    for (s, (ours, theirs)) in ours_err.iter().zip(&theirs_err).enumerate() {
        eprintln!("{key} f32 step {s}: ours {ours:.1e}, reference {theirs:.1e}");
    }
    assert!(
        ours_err[0] <= TOLERANCE_F32,
        "{key} f32: loss at step 0 is {:.1e} from exact",
        ours_err[0]
    );
    let (ours_worst, theirs_worst) = (max(&ours_err), max(&theirs_err));
    assert!(
        ours_worst <= TOLERANCE_F32.max(10.0 * theirs_worst),
        "{key} f32: losses up to {ours_worst:.1e} from exact, the reference's up to {theirs_worst:.1e}"
    );
}

fn max(values: &[f64]) -> f64 {
    values.iter().copied().fold(0.0, f64::max)
}

fn check_setting(setting: &str) {
    let spec = expected();
    let runs = spec["runs"].as_object().unwrap();
    let mut checked = 0;
    for (key, run) in runs
        .iter()
        .filter(|(k, _)| k.starts_with(&format!("{setting}_")))
    {
        check_run(key, run, &spec);
        checked += 1;
    }
    assert_eq!(checked, 3, "three cells per setting");
}

#[test]
fn r8c4_steps_match_the_reference() {
    check_setting("r8c4");
}

#[test]
fn r32c16_steps_match_the_reference() {
    check_setting("r32c16");
}

#[test]
fn resize_matches_pillow() {
    let set = ImageSet::read_shipped(&data_dir(), Dataset::Cifar10).unwrap();
    for r in [8, 32] {
        let want = &tensors(&fixtures().join(format!(
            "r{r}c{}_batches.safetensors",
            if r == 8 { 4 } else { 16 }
        )))["resized_u8"];
        let ours: Vec<f64> = (0..8)
            .flat_map(|i| resize_planar(set.image(i), 32, r))
            .map(f64::from)
            .collect();
        assert_eq!(&ours, want, "resize to {r}");
    }
}

#[test]
fn held_out_split_is_stratified_and_disjoint() {
    let set = Arc::new(ImageSet::read_shipped(&data_dir(), Dataset::Cifar10).unwrap());
    let data = TrainData::held_out(Arc::clone(&set), 20).unwrap();
    assert_eq!((data.train_len(), data.test_len()), (800, 200));
    let test = data.test_batches(1000, 32);
    let mut per_class = [0; 10];
    for &l in &test[0].labels {
        per_class[l as usize] += 1;
    }
    assert_eq!(per_class, [20; 10]);
    // An epoch visits every training image once; a resumed run sees the same batches.
    let a = data.epoch_batches(7, 3, 128, 8);
    assert_eq!(a.iter().map(|b| b.batch_size).sum::<usize>(), 800);
    assert_eq!(a.len(), 7);
    assert_eq!(a, data.epoch_batches(7, 3, 128, 8));
    assert_ne!(a, data.epoch_batches(7, 4, 128, 8));
    assert!(TrainData::held_out(set, 100).is_err());
}
