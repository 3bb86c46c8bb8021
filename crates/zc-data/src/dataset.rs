//! The three NAS-Bench-201 datasets and their constants.

use std::fmt;
use std::str::FromStr;

use crate::DataError;

/// One of the three NAS-Bench-201 image datasets.
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Dataset {
    /// CIFAR-10: 10 classes, 32x32.
    Cifar10,
    /// CIFAR-100: 100 classes, 32x32.
    Cifar100,
    /// ImageNet16-120: the first 120 ImageNet classes downsampled to 16x16.
    ImageNet16_120,
}

impl Dataset {
    /// All datasets, in the paper's order.
    pub const ALL: [Dataset; 3] = [Dataset::Cifar10, Dataset::Cifar100, Dataset::ImageNet16_120];

    /// Canonical name: `"cifar10"`, `"cifar100"` or `"ImageNet16-120"`.
    pub fn name(self) -> &'static str {
        match self {
            Dataset::Cifar10 => "cifar10",
            Dataset::Cifar100 => "cifar100",
            Dataset::ImageNet16_120 => "ImageNet16-120",
        }
    }

    /// Number of classes (10, 100, 120).
    pub fn num_classes(self) -> usize {
        match self {
            Dataset::Cifar10 => 10,
            Dataset::Cifar100 => 100,
            Dataset::ImageNet16_120 => 120,
        }
    }

    /// Image side length in pixels (32, 32, 16).
    pub fn resolution(self) -> usize {
        match self {
            Dataset::Cifar10 | Dataset::Cifar100 => 32,
            Dataset::ImageNet16_120 => 16,
        }
    }

    /// Zero padding of the training-time random crop (4, 4, 2).
    pub fn crop_padding(self) -> usize {
        match self {
            Dataset::Cifar10 | Dataset::Cifar100 => 4,
            Dataset::ImageNet16_120 => 2,
        }
    }

    /// Per-channel (R, G, B) normalisation mean, on the `[0, 1]` scale.
    pub fn mean(self) -> [f32; 3] {
        match self {
            Dataset::Cifar10 | Dataset::Cifar100 => [0.4914, 0.4822, 0.4465],
            Dataset::ImageNet16_120 => [122.68 / 255.0, 116.66 / 255.0, 104.01 / 255.0],
        }
    }

    /// Per-channel (R, G, B) normalisation standard deviation, on the `[0, 1]` scale.
    pub fn std(self) -> [f32; 3] {
        match self {
            Dataset::Cifar10 | Dataset::Cifar100 => [0.2023, 0.1994, 0.2010],
            Dataset::ImageNet16_120 => [63.22 / 255.0, 61.26 / 255.0, 65.09 / 255.0],
        }
    }

    /// File name of the shipped sample under `data/images`.
    pub fn shipped_file(self) -> &'static str {
        match self {
            Dataset::Cifar10 => "cifar10_train_1000.bin",
            Dataset::Cifar100 => "cifar100_real_846.bin",
            Dataset::ImageNet16_120 => "imagenet16_120_derived_278.bin",
        }
    }

    /// Bytes of one image's pixels: 3 planes of `resolution x resolution`.
    pub(crate) fn image_bytes(self) -> usize {
        3 * self.resolution() * self.resolution()
    }
}

impl fmt::Display for Dataset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Dataset {
    type Err = DataError;

    /// Parses a dataset name case-insensitively; `"in16"` is accepted for ImageNet16-120.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "cifar10" => Ok(Dataset::Cifar10),
            "cifar100" => Ok(Dataset::Cifar100),
            "imagenet16-120" | "in16" => Ok(Dataset::ImageNet16_120),
            _ => Err(DataError::UnknownDataset(s.to_owned())),
        }
    }
}

/// How the label is stored at the start of each record.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum LabelLayout {
    /// One label byte (CIFAR-10 binary batches, the shipped files, converted ImageNet16-120).
    #[default]
    OneByte,
    /// Two label bytes, coarse then fine (official CIFAR-100 binary); the fine label is used.
    CoarseFine,
}

impl LabelLayout {
    /// Number of label bytes before the pixels of each record.
    pub fn label_bytes(self) -> usize {
        match self {
            LabelLayout::OneByte => 1,
            LabelLayout::CoarseFine => 2,
        }
    }
}

impl fmt::Display for LabelLayout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LabelLayout::OneByte => "1 label byte",
            LabelLayout::CoarseFine => "2 label bytes, coarse then fine",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for d in Dataset::ALL {
            assert_eq!(d.name().parse::<Dataset>().unwrap(), d);
            assert_eq!(d.to_string(), d.name());
        }
        assert_eq!("CIFAR10".parse::<Dataset>().unwrap(), Dataset::Cifar10);
        assert_eq!(
            "imagenet16-120".parse::<Dataset>().unwrap(),
            Dataset::ImageNet16_120
        );
        assert_eq!("IN16".parse::<Dataset>().unwrap(), Dataset::ImageNet16_120);
        let err = "svhn".parse::<Dataset>().unwrap_err().to_string();
        assert!(err.contains("svhn") && err.contains("cifar100") && err.contains("ImageNet16-120"));
    }

    #[test]
    fn constants() {
        assert_eq!(Dataset::ALL.map(Dataset::num_classes), [10, 100, 120]);
        assert_eq!(Dataset::ALL.map(Dataset::resolution), [32, 32, 16]);
        assert_eq!(Dataset::ALL.map(Dataset::crop_padding), [4, 4, 2]);
        assert_eq!(Dataset::ImageNet16_120.image_bytes(), 768);
        let m = Dataset::ImageNet16_120.mean();
        assert!((m[0] - 0.481_098).abs() < 1e-5);
        let s = Dataset::ImageNet16_120.std();
        assert!((s[2] - 0.255_255).abs() < 1e-5);
    }
}
