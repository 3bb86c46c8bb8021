//! Training and test data for reduced training: which images, in which order, augmented how.
//!
//! The authors' pipeline (torchvision): training images get `RandomCrop(32, padding 4)`, then
//! `Resize(R)`, then `RandomHorizontalFlip`; test images only `Resize(R)`; both are normalised
//! with the dataset's mean and std. An epoch visits every training image once in a fresh
//! random order; its last batch may be smaller (the DataLoader keeps it).

use std::sync::Arc;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use zc_data::{ImageSet, Minibatch, crop_flip};

use crate::TrainError;
use crate::resize::resize_planar;

/// The images one training run learns from and is tested on.
#[derive(Clone, Debug)]
pub struct TrainData {
    train: Arc<ImageSet>,
    train_indices: Vec<usize>,
    test: Arc<ImageSet>,
    test_indices: Vec<usize>,
    description: String,
    images_sha256: String,
}

impl TrainData {
    /// Separate training and test sets, every image of each (e.g. the official CIFAR-10
    /// training and test files).
    pub fn separate(train: Arc<ImageSet>, test: Arc<ImageSet>) -> Result<Self, TrainError> {
        if train.is_empty() || test.is_empty() {
            return Err(TrainError::BadData(
                "the training and the test set must both hold images".into(),
            ));
        }
        if train.resolution() != test.resolution() {
            return Err(TrainError::BadData(format!(
                "training images are {0}x{0} but test images {1}x{1}",
                train.resolution(),
                test.resolution()
            )));
        }
        let description = format!("{} training / {} test images", train.len(), test.len());
        Ok(TrainData {
            train_indices: (0..train.len()).collect(),
            test_indices: (0..test.len()).collect(),
            images_sha256: format!("{}+{}", train.sha256(), test.sha256()),
            train,
            test,
            description,
        })
    }

    /// One set split by class: the last `test_per_class` images of every class (in file order)
    /// are held out for testing, the rest train. Deterministic, and stratified so that the
    /// test accuracy weighs every class alike.
    pub fn held_out(set: Arc<ImageSet>, test_per_class: usize) -> Result<Self, TrainError> {
        let counts = set.class_counts();
        if let Some((class, &n)) = counts
            .iter()
            .enumerate()
            .find(|&(_, &n)| n <= test_per_class)
        {
            return Err(TrainError::BadData(format!(
                "class {class} has {n} images: holding out {test_per_class} per class would leave none to train on"
            )));
        }
        let mut seen = vec![0usize; counts.len()];
        let (mut train_indices, mut test_indices) = (Vec::new(), Vec::new());
        for (i, &label) in set.labels().iter().enumerate() {
            let class = usize::from(label);
            seen[class] += 1;
            if seen[class] > counts[class] - test_per_class {
                test_indices.push(i);
            } else {
                train_indices.push(i);
            }
        }
        let description = format!(
            "{} training / {} held-out test images (the last {test_per_class} of each class)",
            train_indices.len(),
            test_indices.len()
        );
        Ok(TrainData {
            images_sha256: set.sha256(),
            train: Arc::clone(&set),
            test: set,
            train_indices,
            test_indices,
            description,
        })
    }

    /// What the data is, for outputs and logs.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// The same data described as `description` (e.g. naming where the images come from).
    pub fn described(mut self, description: String) -> Self {
        self.description = description;
        self
    }

    /// SHA-256 of the image file(s): one digest for a held-out split, `train+test` otherwise.
    pub fn images_sha256(&self) -> &str {
        &self.images_sha256
    }

    /// Training images.
    pub fn train_len(&self) -> usize {
        self.train_indices.len()
    }

    /// Test images.
    pub fn test_len(&self) -> usize {
        self.test_indices.len()
    }

    /// Number of classes.
    pub fn num_classes(&self) -> usize {
        self.train.num_classes()
    }

    /// The augmented training batches of epoch `epoch` at `resolution`: a shuffle and
    /// augmentations drawn from `(seed, epoch)` only, so a resumed run sees the same batches.
    pub fn epoch_batches(
        &self,
        seed: u64,
        epoch: usize,
        batch_size: usize,
        resolution: usize,
    ) -> Vec<Minibatch> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(epoch as u64);
        let mut order = self.train_indices.clone();
        order.shuffle(&mut rng);
        let side = self.train.resolution();
        let pad = self.train.dataset().crop_padding();
        order
            .chunks(batch_size)
            .map(|chunk| {
                let images: Vec<Vec<u8>> = chunk
                    .iter()
                    .map(|&i| {
                        let top = rng.random_range(0..=2 * pad);
                        let left = rng.random_range(0..=2 * pad);
                        let flip = rng.random_bool(0.5);
                        // Flipping before the resize equals flipping after it (the resize
                        // filter is symmetric).
                        let cropped = crop_flip(self.train.image(i), side, pad, top, left, flip);
                        resize_planar(&cropped, side, resolution)
                    })
                    .collect();
                let labels = chunk.iter().map(|&i| i64::from(self.train.label(i)));
                batch(&self.train, &images, labels, resolution)
            })
            .collect()
    }

    /// The test images at `resolution` (resized, not augmented), in batches of `batch_size`.
    pub fn test_batches(&self, batch_size: usize, resolution: usize) -> Vec<Minibatch> {
        let side = self.test.resolution();
        self.test_indices
            .chunks(batch_size)
            .map(|chunk| {
                let images: Vec<Vec<u8>> = chunk
                    .iter()
                    .map(|&i| resize_planar(self.test.image(i), side, resolution))
                    .collect();
                let labels = chunk.iter().map(|&i| i64::from(self.test.label(i)));
                batch(&self.test, &images, labels, resolution)
            })
            .collect()
    }
}

/// Normalises uint8 planar images into a minibatch.
fn batch(
    set: &ImageSet,
    images: &[Vec<u8>],
    labels: impl Iterator<Item = i64>,
    resolution: usize,
) -> Minibatch {
    let (mean, std) = (set.dataset().mean(), set.dataset().std());
    let plane = resolution * resolution;
    let mut values = Vec::with_capacity(images.len() * 3 * plane);
    for image in images {
        for (c, channel) in image.chunks_exact(plane).enumerate() {
            values.extend(
                channel
                    .iter()
                    .map(|&v| (f32::from(v) / 255.0 - mean[c]) / std[c]),
            );
        }
    }
    Minibatch {
        images: values,
        labels: labels.collect(),
        batch_size: images.len(),
        resolution,
    }
}
