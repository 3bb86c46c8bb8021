//! Image datasets in the CIFAR binary layout and the zero-cost proxies' minibatch sampler.
//!
//! [`ImageSet`] reads CIFAR-10 / CIFAR-100 / ImageNet16-120 images stored as binary records
//! (label byte(s), then planar uint8 R, G, B planes), either the small sets shipped under
//! `data/images` or the official files. [`MinibatchSampler`] draws the one minibatch a
//! data-dependent proxy scores an architecture on (reference.md §2): a "random" batch of
//! distinct images or k images per class, with the training augmentation (random crop with
//! zero padding, horizontal flip) and per-channel normalisation, deterministic per
//! `(seed, key)`.

mod dataset;
mod error;
mod image_set;
mod sampler;

pub use dataset::{Dataset, LabelLayout};
pub use error::DataError;
pub use image_set::ImageSet;
pub use sampler::{DataLoad, Minibatch, MinibatchSampler, crop_flip};
