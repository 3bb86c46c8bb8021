//! Reading images stored as CIFAR-style binary records.

use std::path::{Path, PathBuf};

use crate::error::{other_format_fitting, record_bytes};
use crate::{DataError, Dataset, LabelLayout};

/// Labelled images of one dataset, held as planar uint8 `N x 3 x H x W`.
#[derive(Clone, Debug)]
pub struct ImageSet {
    dataset: Dataset,
    labels: Vec<u16>,
    pixels: Vec<u8>,
    sources: Vec<PathBuf>,
}

impl ImageSet {
    /// Reads and concatenates binary record files (e.g. the five official CIFAR-10 training
    /// batches), in the order given.
    ///
    /// Each record is the label byte(s) of `layout`, then the R, G and B planes of a
    /// `resolution x resolution` image, row-major. Every label must be below the dataset's
    /// class count.
    pub fn read(
        paths: &[impl AsRef<Path>],
        dataset: Dataset,
        layout: LabelLayout,
    ) -> Result<ImageSet, DataError> {
        if paths.is_empty() {
            return Err(DataError::NoFiles { dataset });
        }
        let mut set = ImageSet {
            dataset,
            labels: Vec::new(),
            pixels: Vec::new(),
            sources: Vec::with_capacity(paths.len()),
        };
        for path in paths {
            set.append_file(path.as_ref(), layout)?;
        }
        Ok(set)
    }

    /// Reads the sample shipped for `dataset`: `data_dir/images/<dataset.shipped_file()>`,
    /// one label byte per record.
    pub fn read_shipped(data_dir: &Path, dataset: Dataset) -> Result<ImageSet, DataError> {
        let path = data_dir.join("images").join(dataset.shipped_file());
        ImageSet::read(&[path], dataset, LabelLayout::OneByte)
    }

    fn append_file(&mut self, path: &Path, layout: LabelLayout) -> Result<(), DataError> {
        let dataset = self.dataset;
        let bytes = std::fs::read(path).map_err(|source| DataError::Io {
            path: path.to_owned(),
            source,
        })?;
        let len = bytes.len() as u64;
        let record = record_bytes(dataset, layout);
        if bytes.is_empty() {
            return Err(DataError::Empty {
                path: path.to_owned(),
            });
        }
        if !bytes.len().is_multiple_of(record) {
            return Err(match other_format_fitting(len, dataset, layout) {
                Some((found_resolution, found_layout)) => DataError::LayoutMismatch {
                    path: path.to_owned(),
                    len,
                    dataset,
                    layout,
                    found_resolution,
                    found_layout,
                },
                None => DataError::Truncated {
                    path: path.to_owned(),
                    len,
                    dataset,
                    layout,
                },
            });
        }
        let n = bytes.len() / record;
        let label_bytes = layout.label_bytes();
        self.labels.reserve(n);
        self.pixels.reserve(n * dataset.image_bytes());
        for (i, rec) in bytes.chunks_exact(record).enumerate() {
            // The class label is the last label byte (the fine label of CoarseFine).
            let label = u16::from(rec[label_bytes - 1]);
            if usize::from(label) >= dataset.num_classes() {
                return Err(DataError::LabelOutOfRange {
                    path: path.to_owned(),
                    record: i,
                    label,
                    dataset,
                });
            }
            self.labels.push(label);
            self.pixels.extend_from_slice(&rec[label_bytes..]);
        }
        self.sources.push(path.to_owned());
        Ok(())
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no images (never the case for a set returned by [`ImageSet::read`]).
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Class label of image `i`.
    ///
    /// # Panics
    /// If `i >= self.len()`.
    pub fn label(&self, i: usize) -> u16 {
        self.labels[i]
    }

    /// All class labels, in record order.
    pub fn labels(&self) -> &[u16] {
        &self.labels
    }

    /// Planar uint8 pixels of image `i`: R, G, B planes of `resolution x resolution`, row-major.
    ///
    /// # Panics
    /// If `i >= self.len()`.
    pub fn image(&self, i: usize) -> &[u8] {
        let size = self.dataset.image_bytes();
        &self.pixels[i * size..(i + 1) * size]
    }

    /// Image side length in pixels.
    pub fn resolution(&self) -> usize {
        self.dataset.resolution()
    }

    /// The dataset the images belong to.
    pub fn dataset(&self) -> Dataset {
        self.dataset
    }

    /// Number of classes of the dataset.
    pub fn num_classes(&self) -> usize {
        self.dataset.num_classes()
    }

    /// Number of images of each class, indexed by label (length = number of classes).
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.num_classes()];
        for &label in &self.labels {
            counts[usize::from(label)] += 1;
        }
        counts
    }

    /// The files the images were read from, in order.
    pub fn sources(&self) -> &[PathBuf] {
        &self.sources
    }

    /// The source files as one comma-separated string, for messages.
    pub(crate) fn source_desc(&self) -> String {
        let names: Vec<String> = self
            .sources
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        names.join(", ")
    }
}
