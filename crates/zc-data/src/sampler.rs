//! The minibatch a data-dependent proxy scores one architecture on (reference.md §2).

use std::sync::Arc;

use rand::seq::index;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::{DataError, ImageSet};

/// How the images of one minibatch are chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DataLoad {
    /// The "random" data load: `batch_size` distinct images drawn uniformly.
    Random {
        /// Images per batch.
        batch_size: usize,
    },
    /// The "grasp" data load: `per_class` distinct images of every class, class-major, so the
    /// batch holds `classes * per_class` images.
    PerClass {
        /// Images of each class.
        per_class: usize,
    },
}

impl DataLoad {
    /// Images per batch for a dataset with `num_classes` classes.
    pub fn batch_size(self, num_classes: usize) -> usize {
        match self {
            DataLoad::Random { batch_size } => batch_size,
            DataLoad::PerClass { per_class } => per_class * num_classes,
        }
    }
}

/// One augmented, normalised minibatch.
#[derive(Clone, Debug, PartialEq)]
pub struct Minibatch {
    /// Images as `[batch_size, 3, resolution, resolution]`, row-major, normalised per channel.
    pub images: Vec<f32>,
    /// Class label of each image.
    pub labels: Vec<i64>,
    /// Number of images.
    pub batch_size: usize,
    /// Image side length in pixels.
    pub resolution: usize,
}

impl Minibatch {
    /// Tensor shape of [`Minibatch::images`]: `[batch_size, 3, resolution, resolution]`.
    pub fn shape(&self) -> [usize; 4] {
        [self.batch_size, 3, self.resolution, self.resolution]
    }
}

/// Draws deterministic minibatches from an [`ImageSet`]: one independent random stream per
/// `(seed, key)`, so each architecture (key = its code) gets its own fresh batch.
///
/// Each image gets the training augmentation with torchvision semantics: `RandomCrop(res,
/// padding)` with zero (black) padding, then a horizontal flip with probability 0.5, then
/// `(x / 255 - mean[c]) / std[c]`.
#[derive(Clone, Debug)]
pub struct MinibatchSampler {
    images: Arc<ImageSet>,
    load: DataLoad,
    seed: u64,
    /// Image indices of each class (filled for [`DataLoad::PerClass`] only).
    by_class: Vec<Vec<usize>>,
    /// `lut[c][v]` = normalised value of uint8 `v` in channel `c`.
    lut: [[f32; 256]; 3],
}

impl MinibatchSampler {
    /// Builds a sampler, checking that `load` can be served by `images`: a non-empty batch,
    /// at most as many random images as the set holds, and at least `per_class` images of
    /// every class.
    pub fn new(
        images: impl Into<Arc<ImageSet>>,
        load: DataLoad,
        seed: u64,
    ) -> Result<Self, DataError> {
        let images = images.into();
        if load.batch_size(images.num_classes()) == 0 {
            return Err(DataError::EmptyBatch {
                source_desc: images.source_desc(),
            });
        }
        let mut by_class = Vec::new();
        match load {
            DataLoad::Random { batch_size } if batch_size > images.len() => {
                return Err(DataError::BatchTooLarge {
                    batch_size,
                    len: images.len(),
                    source_desc: images.source_desc(),
                });
            }
            DataLoad::Random { .. } => {}
            DataLoad::PerClass { per_class } => {
                by_class = vec![Vec::new(); images.num_classes()];
                for (i, &label) in images.labels().iter().enumerate() {
                    by_class[usize::from(label)].push(i);
                }
                if let Some((class, members)) = by_class
                    .iter()
                    .enumerate()
                    .find(|(_, m)| m.len() < per_class)
                {
                    return Err(DataError::TooFewImages {
                        class,
                        count: members.len(),
                        per_class,
                        source_desc: images.source_desc(),
                    });
                }
            }
        }
        let (mean, std) = (images.dataset().mean(), images.dataset().std());
        let lut =
            std::array::from_fn(|c| std::array::from_fn(|v| (v as f32 / 255.0 - mean[c]) / std[c]));
        Ok(MinibatchSampler {
            images,
            load,
            seed,
            by_class,
            lut,
        })
    }

    /// The minibatch for `key`: the same `(seed, key)` always gives the same batch, different
    /// keys give independent batches.
    pub fn batch(&self, key: u64) -> Minibatch {
        let mut rng = ChaCha8Rng::seed_from_u64(stream_seed(self.seed, key));
        let indices: Vec<usize> = match self.load {
            DataLoad::Random { batch_size } => {
                index::sample(&mut rng, self.images.len(), batch_size).into_vec()
            }
            DataLoad::PerClass { per_class } => {
                let mut picked = Vec::with_capacity(self.batch_size());
                for members in &self.by_class {
                    picked.extend(
                        index::sample(&mut rng, members.len(), per_class)
                            .into_iter()
                            .map(|j| members[j]),
                    );
                }
                picked
            }
        };
        let resolution = self.images.resolution();
        let image_len = 3 * resolution * resolution;
        let mut images = vec![0.0; indices.len() * image_len];
        for (out, &i) in images.chunks_exact_mut(image_len).zip(&indices) {
            self.augment(self.images.image(i), &mut rng, out);
        }
        Minibatch {
            images,
            labels: indices
                .iter()
                .map(|&i| i64::from(self.images.label(i)))
                .collect(),
            batch_size: indices.len(),
            resolution,
        }
    }

    /// Random crop with zero padding, random horizontal flip and normalisation of one
    /// planar image into `out`.
    fn augment(&self, image: &[u8], rng: &mut ChaCha8Rng, out: &mut [f32]) {
        let res = self.images.resolution();
        let pad = self.images.dataset().crop_padding();
        let top = rng.random_range(0..=2 * pad);
        let left = rng.random_range(0..=2 * pad);
        let flip = rng.random_bool(0.5);
        let cropped = crop_flip(image, res, pad, top, left, flip);
        let plane = res * res;
        for (c, (src, dst)) in cropped
            .chunks_exact(plane)
            .zip(out.chunks_exact_mut(plane))
            .enumerate()
        {
            for (value, &pixel) in dst.iter_mut().zip(src) {
                *value = self.lut[c][usize::from(pixel)];
            }
        }
    }

    /// Images per batch.
    pub fn batch_size(&self) -> usize {
        self.load.batch_size(self.images.num_classes())
    }

    /// The data load.
    pub fn load(&self) -> DataLoad {
        self.load
    }

    /// The image set batches are drawn from.
    pub fn image_set(&self) -> &ImageSet {
        &self.images
    }
}

/// Seed of the random stream of `(seed, key)`: distinct keys give distinct seeds.
fn stream_seed(seed: u64, key: u64) -> u64 {
    splitmix64(splitmix64(seed) ^ key)
}

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// torchvision's `RandomCrop(side, padding=pad)` then `RandomHorizontalFlip` on one planar
/// `3 x side x side` image, with the crop's corner at (`top`, `left`) of the zero-padded image
/// and the flip given: the window's pixels, zero where it covers the padding.
pub fn crop_flip(
    image: &[u8],
    side: usize,
    pad: usize,
    top: usize,
    left: usize,
    flip: bool,
) -> Vec<u8> {
    // Source coordinate of padded coordinate `p`, or None inside the zero border.
    let source = |p: usize| p.checked_sub(pad).filter(|&s| s < side);
    let mut out = vec![0u8; image.len()];
    for (src, dst) in image
        .chunks_exact(side * side)
        .zip(out.chunks_exact_mut(side * side))
    {
        for (y, row) in dst.chunks_exact_mut(side).enumerate() {
            let Some(sy) = source(top + y) else { continue };
            for (x, value) in row.iter_mut().enumerate() {
                let cx = if flip { side - 1 - x } else { x };
                if let Some(sx) = source(left + cx) {
                    *value = src[sy * side + sx];
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crop_at_the_pad_offset_without_flip_is_the_image() {
        let image: Vec<u8> = (0..3 * 8 * 8).map(|v| v as u8).collect();
        assert_eq!(crop_flip(&image, 8, 4, 4, 4, false), image);
        let shifted = crop_flip(&image, 8, 4, 5, 4, false);
        // One row up: the last row comes from the zero padding.
        assert_eq!(&shifted[..8], &image[8..16]);
        assert_eq!(&shifted[56..64], &[0u8; 8]);
        let flipped = crop_flip(&image, 8, 4, 4, 4, true);
        assert_eq!(flipped[0], image[7]);
    }
}
