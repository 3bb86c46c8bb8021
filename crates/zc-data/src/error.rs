//! Errors of reading image files and configuring the sampler.

use std::fmt;
use std::path::PathBuf;

use crate::{Dataset, LabelLayout};

/// Everything that can go wrong reading images or building a [`crate::MinibatchSampler`].
///
/// Messages name the file(s) involved.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A name that is not one of the three datasets.
    #[error("unknown dataset {0:?}; valid names: cifar10, cifar100, ImageNet16-120 (or in16)")]
    UnknownDataset(String),
    /// [`crate::ImageSet::read`] was given no files.
    #[error("no image files given for {dataset}")]
    NoFiles {
        /// The dataset being read.
        dataset: Dataset,
    },
    /// The file could not be read (missing, unreadable).
    #[error("cannot read image file {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file has no bytes.
    #[error("image file {} is empty", path.display())]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// The length is not a whole number of records.
    #[error(
        "{} is {} bytes, not a multiple of the {}-byte record of {dataset} ({}): truncated or wrong layout",
        path.display(), Thousands(*len), Thousands(record_bytes(*dataset, *layout) as u64),
        format_desc(dataset.resolution(), *layout)
    )]
    Truncated {
        /// The file.
        path: PathBuf,
        /// Its length in bytes.
        len: u64,
        /// The dataset it was read as.
        dataset: Dataset,
        /// The label layout it was read with.
        layout: LabelLayout,
    },
    /// The length fits the record of another resolution or label layout, not the requested one.
    #[error(
        "{} is {} bytes, not a multiple of the {}-byte record of {dataset} ({}) but a whole number of {}-byte records ({}): wrong dataset or label layout",
        path.display(), Thousands(*len), Thousands(record_bytes(*dataset, *layout) as u64),
        format_desc(dataset.resolution(), *layout),
        Thousands(record_size(*found_resolution, *found_layout) as u64),
        format_desc(*found_resolution, *found_layout)
    )]
    LayoutMismatch {
        /// The file.
        path: PathBuf,
        /// Its length in bytes.
        len: u64,
        /// The dataset it was read as.
        dataset: Dataset,
        /// The label layout it was read with.
        layout: LabelLayout,
        /// The image side length whose record size fits the file.
        found_resolution: usize,
        /// The label layout whose record size fits the file.
        found_layout: LabelLayout,
    },
    /// A record's class label is not below the dataset's class count.
    #[error(
        "record {record} of {} has label {label} but {dataset} has {} classes",
        path.display(), dataset.num_classes()
    )]
    LabelOutOfRange {
        /// The file.
        path: PathBuf,
        /// 0-based record index within the file.
        record: usize,
        /// The offending label.
        label: u16,
        /// The dataset it was read as.
        dataset: Dataset,
    },
    /// A shipped image file that disagrees with its manifest (records lost or reordered).
    #[error("{} does not match its manifest {}: {reason}", path.display(), manifest.display())]
    Manifest {
        /// The image file.
        path: PathBuf,
        /// The manifest CSV.
        manifest: PathBuf,
        /// What disagrees.
        reason: String,
    },
    /// A data load asking for zero images.
    #[error(
        "the data load of {source_desc} asks for an empty batch (batch size and images per class must be >= 1)"
    )]
    EmptyBatch {
        /// The image files, comma-separated.
        source_desc: String,
    },
    /// A random batch larger than the image set.
    #[error("batch size {batch_size} exceeds the {len} images of {source_desc}")]
    BatchTooLarge {
        /// Requested batch size.
        batch_size: usize,
        /// Number of images available.
        len: usize,
        /// The image files, comma-separated.
        source_desc: String,
    },
    /// A class with fewer images than the per-class data load needs.
    #[error(
        "class {class} has only {count} images in {source_desc} but the per-class data load needs {per_class}"
    )]
    TooFewImages {
        /// The class label.
        class: usize,
        /// Images of that class.
        count: usize,
        /// Requested images per class.
        per_class: usize,
        /// The image files, comma-separated.
        source_desc: String,
    },
}

/// Bytes of one record of `dataset` stored with `layout`.
pub(crate) fn record_bytes(dataset: Dataset, layout: LabelLayout) -> usize {
    record_size(dataset.resolution(), layout)
}

fn record_size(resolution: usize, layout: LabelLayout) -> usize {
    layout.label_bytes() + 3 * resolution * resolution
}

fn format_desc(resolution: usize, layout: LabelLayout) -> String {
    format!("{resolution}x{resolution}, {layout}")
}

/// The record formats other than `(dataset, layout)` whose size divides `len`, if any.
pub(crate) fn other_format_fitting(
    len: u64,
    dataset: Dataset,
    layout: LabelLayout,
) -> Option<(usize, LabelLayout)> {
    let own = record_bytes(dataset, layout);
    [32, 16]
        .into_iter()
        .flat_map(|res| [(res, LabelLayout::OneByte), (res, LabelLayout::CoarseFine)])
        .find(|&(res, lay)| {
            let size = record_size(res, lay);
            size != own && len.is_multiple_of(size as u64)
        })
}

/// Formats an integer with thousands separators (`3073` -> `3,073`).
struct Thousands(u64);

impl fmt::Display for Thousands {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digits = self.0.to_string();
        let mut out = String::with_capacity(digits.len() + digits.len() / 3);
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                out.push(',');
            }
            out.push(c);
        }
        f.write_str(&out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_separators() {
        assert_eq!(Thousands(0).to_string(), "0");
        assert_eq!(Thousands(999).to_string(), "999");
        assert_eq!(Thousands(3073).to_string(), "3,073");
        assert_eq!(Thousands(153_650_000).to_string(), "153,650,000");
    }

    #[test]
    fn truncated_message() {
        let err = DataError::Truncated {
            path: "x/c10.bin".into(),
            len: 3000,
            dataset: Dataset::Cifar10,
            layout: LabelLayout::OneByte,
        };
        assert_eq!(
            err.to_string(),
            "x/c10.bin is 3,000 bytes, not a multiple of the 3,073-byte record of cifar10 \
             (32x32, 1 label byte): truncated or wrong layout"
        );
    }

    #[test]
    fn other_formats() {
        // An official CIFAR-100 file read with one label byte.
        assert_eq!(
            other_format_fitting(50_000 * 3074, Dataset::Cifar100, LabelLayout::OneByte),
            Some((32, LabelLayout::CoarseFine))
        );
        assert_eq!(
            other_format_fitting(278 * 769, Dataset::Cifar10, LabelLayout::OneByte),
            Some((16, LabelLayout::OneByte))
        );
        assert_eq!(
            other_format_fitting(3000, Dataset::Cifar10, LabelLayout::OneByte),
            None
        );
    }
}
