//! The minibatch sampler: determinism, data loads, augmentation and normalisation.

mod common;

use std::path::Path;
use std::sync::Arc;

use common::{DATA_DIR, TempFile, records};
use zc_data::{DataError, DataLoad, Dataset, ImageSet, LabelLayout, Minibatch, MinibatchSampler};

/// `n` images of `dataset` whose R plane is the image index, G the row and B the column, so
/// that every output pixel reveals where it came from; label = index mod classes.
fn coordinate_set(dataset: Dataset, n: usize) -> ImageSet {
    let res = dataset.resolution();
    let images: Vec<Vec<u8>> = (0..n)
        .map(|i| {
            let mut px = vec![i as u8; res * res];
            px.extend((0..res * res).map(|p| (p / res) as u8));
            px.extend((0..res * res).map(|p| (p % res) as u8));
            px
        })
        .collect();
    let bytes = records(
        images
            .iter()
            .enumerate()
            .map(|(i, px)| ((i % dataset.num_classes()) as u8, px.as_slice())),
    );
    let file = TempFile::new(dataset.name(), &bytes);
    ImageSet::read(&[file.path()], dataset, LabelLayout::OneByte).unwrap()
}

fn normalised(dataset: Dataset, c: usize, v: u8) -> f32 {
    (f32::from(v) / 255.0 - dataset.mean()[c]) / dataset.std()[c]
}

fn raw_value(dataset: Dataset, c: usize, x: f32) -> u8 {
    ((x * dataset.std()[c] + dataset.mean()[c]) * 255.0).round() as u8
}

/// Image `b` of a batch from [`coordinate_set`]: infers the source image, crop offset and
/// flip from the interior pixels, checks every value against a direct evaluation of
/// pad-crop-flip-normalise, and returns `(source index, top, left, flipped)`.
fn check_image(dataset: Dataset, batch: &Minibatch, b: usize) -> (usize, usize, usize, bool) {
    let (res, pad) = (dataset.resolution(), dataset.crop_padding());
    let plane = res * res;
    let img = &batch.images[b * 3 * plane..(b + 1) * 3 * plane];
    let at = |c: usize, y: usize, x: usize| raw_value(dataset, c, img[c * plane + y * res + x]);
    // Output (pad, pad) always comes from the image: source row = top, column tells left.
    let idx = usize::from(at(0, pad, pad));
    let top = usize::from(at(1, pad, pad));
    let flip = at(2, pad, pad + 1) < at(2, pad, pad);
    let cx = if flip { res - 1 - pad } else { pad };
    let left = usize::from(at(2, pad, pad)) + pad - cx;
    assert!(top <= 2 * pad && left <= 2 * pad);
    assert_eq!(batch.labels[b], (idx % dataset.num_classes()) as i64);
    for c in 0..3 {
        for y in 0..res {
            for x in 0..res {
                let cx = if flip { res - 1 - x } else { x };
                let (py, px) = (top + y, left + cx);
                let inside = (pad..pad + res).contains(&py) && (pad..pad + res).contains(&px);
                let v = match (inside, c) {
                    (false, _) => 0,
                    (true, 0) => idx as u8,
                    (true, 1) => (py - pad) as u8,
                    (true, _) => (px - pad) as u8,
                };
                assert_eq!(img[c * plane + y * res + x], normalised(dataset, c, v));
            }
        }
    }
    (idx, top, left, flip)
}

#[test]
fn augmentation_matches_pad_crop_flip_normalise() {
    for (dataset, n) in [(Dataset::ImageNet16_120, 240), (Dataset::Cifar10, 200)] {
        let pad = dataset.crop_padding();
        let sampler = MinibatchSampler::new(
            coordinate_set(dataset, n),
            DataLoad::Random { batch_size: 64 },
            7,
        )
        .unwrap();
        let (mut flips, mut tops, mut lefts) = (0, vec![0; 2 * pad + 1], vec![0; 2 * pad + 1]);
        let keys = 100;
        for key in 0..keys {
            let batch = sampler.batch(key);
            assert_eq!(
                batch.shape(),
                [64, 3, dataset.resolution(), dataset.resolution()]
            );
            assert_eq!(batch.images.len(), 64 * 3 * dataset.resolution().pow(2));
            let mut seen = Vec::new();
            for b in 0..64 {
                let (idx, top, left, flip) = check_image(dataset, &batch, b);
                seen.push(idx);
                flips += usize::from(flip);
                tops[top] += 1;
                lefts[left] += 1;
            }
            seen.sort_unstable();
            seen.dedup();
            assert_eq!(seen.len(), 64, "distinct images in a random batch");
        }
        // 6,400 draws: flip rate 0.5 +- 0.03 (about 5 standard deviations), offsets uniform.
        let draws = (keys * 64) as f64;
        let rate = flips as f64 / draws;
        assert!((0.47..0.53).contains(&rate), "{dataset}: flip rate {rate}");
        let expected = draws / (2 * pad + 1) as f64;
        for count in tops.iter().chain(&lefts) {
            assert!(
                (*count as f64 - expected).abs() < 0.15 * expected,
                "{dataset}: {tops:?} {lefts:?}"
            );
        }
    }
}

#[test]
fn constant_white_images_give_two_values_per_channel() {
    let dataset = Dataset::Cifar100;
    let white = [255u8; 3072];
    let file = TempFile::new("white", &records((0..100).map(|l| (l, &white[..]))));
    let set = ImageSet::read(&[file.path()], dataset, LabelLayout::OneByte).unwrap();
    let sampler = MinibatchSampler::new(set, DataLoad::Random { batch_size: 50 }, 1).unwrap();
    let (mean, std) = (dataset.mean(), dataset.std());
    let mut padded = 0;
    for key in [0, 1, u64::MAX] {
        let batch = sampler.batch(key);
        for (i, &v) in batch.images.iter().enumerate() {
            let c = i / 1024 % 3;
            let (y, x) = (i % 1024 / 32, i % 32);
            let (one, zero) = ((1.0 - mean[c]) / std[c], (0.0 - mean[c]) / std[c]);
            assert_eq!(normalised(dataset, c, 255), one);
            assert!(v == one || v == zero, "value {v} in channel {c}");
            padded += usize::from(v == zero);
            // The central 24x24 never reaches the 4-pixel border.
            if (4..28).contains(&y) && (4..28).contains(&x) {
                assert_eq!(v, one);
            }
        }
    }
    assert!(padded > 0, "some crops reach the zero border");
}

#[test]
fn batches_are_deterministic_per_seed_and_key() {
    let set = Arc::new(ImageSet::read_shipped(Path::new(DATA_DIR), Dataset::Cifar10).unwrap());
    let load = DataLoad::Random { batch_size: 64 };
    let a = MinibatchSampler::new(Arc::clone(&set), load, 42).unwrap();
    let b = MinibatchSampler::new(Arc::clone(&set), load, 42).unwrap();
    let other_seed = MinibatchSampler::new(set, load, 43).unwrap();
    assert_eq!(a.batch_size(), 64);
    assert_eq!(a.batch(5), b.batch(5));
    assert_eq!(a.batch(5), a.batch(5));
    assert_ne!(a.batch(5).images, a.batch(6).images);
    assert_ne!(a.batch(5).labels, a.batch(6).labels);
    assert_ne!(a.batch(5).images, other_seed.batch(5).images);
    let batch = a.batch(9);
    assert_eq!((batch.batch_size, batch.resolution), (64, 32));
    assert_eq!(batch.labels.len(), 64);
    assert!(batch.labels.iter().all(|l| (0..10).contains(l)));
    assert!(batch.images.iter().all(|v| v.is_finite() && v.abs() < 3.0));
}

#[test]
fn per_class_load_is_class_major() {
    let dataset = Dataset::Cifar10;
    let sampler = MinibatchSampler::new(
        coordinate_set(dataset, 200),
        DataLoad::PerClass { per_class: 3 },
        3,
    )
    .unwrap();
    assert_eq!(sampler.batch_size(), 30);
    for key in 0..20 {
        let batch = sampler.batch(key);
        assert_eq!(batch.batch_size, 30);
        let expected: Vec<i64> = (0..10).flat_map(|c| [c; 3]).collect();
        assert_eq!(batch.labels, expected);
        let mut idx: Vec<usize> = (0..30).map(|b| check_image(dataset, &batch, b).0).collect();
        idx.sort_unstable();
        idx.dedup();
        assert_eq!(idx.len(), 30, "distinct images");
    }

    // The shipped ImageNet16-120 sample has at least one image of every class.
    let in16 = ImageSet::read_shipped(Path::new(DATA_DIR), Dataset::ImageNet16_120).unwrap();
    let sampler = MinibatchSampler::new(in16, DataLoad::PerClass { per_class: 1 }, 0).unwrap();
    let batch = sampler.batch(0);
    assert_eq!(batch.labels, (0..120).collect::<Vec<i64>>());
    assert_eq!(batch.images.len(), 120 * 3 * 16 * 16);
}

#[test]
fn invalid_loads_error() {
    let set = ImageSet::read_shipped(Path::new(DATA_DIR), Dataset::Cifar100).unwrap();
    let counts = set.class_counts();
    let thin = counts.iter().position(|&c| c < 3).unwrap();

    let err =
        MinibatchSampler::new(set.clone(), DataLoad::PerClass { per_class: 3 }, 0).unwrap_err();
    assert!(
        matches!(err, DataError::TooFewImages { class, count, per_class: 3, .. } if class == thin && count == counts[thin]),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains(&format!("class {thin} has only 2 images"))
            && msg.contains("cifar100_real_846.bin"),
        "{msg}"
    );

    let err =
        MinibatchSampler::new(set.clone(), DataLoad::Random { batch_size: 847 }, 0).unwrap_err();
    assert!(matches!(
        err,
        DataError::BatchTooLarge {
            batch_size: 847,
            len: 846,
            ..
        }
    ));
    assert!(err.to_string().contains("cifar100_real_846.bin"));
    assert!(MinibatchSampler::new(set.clone(), DataLoad::Random { batch_size: 846 }, 0).is_ok());

    for load in [
        DataLoad::Random { batch_size: 0 },
        DataLoad::PerClass { per_class: 0 },
    ] {
        let err = MinibatchSampler::new(set.clone(), load, 0).unwrap_err();
        assert!(matches!(err, DataError::EmptyBatch { .. }), "{err:?}");
    }
}
