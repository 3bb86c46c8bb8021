//! Reading images stored as CIFAR-style binary records.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{other_format_fitting, record_bytes};
use crate::{DataError, Dataset, LabelLayout};

/// Labelled images of one dataset, held as planar uint8 `N x 3 x H x W`.
#[derive(Clone, Debug)]
pub struct ImageSet {
    dataset: Dataset,
    labels: Vec<u16>,
    pixels: Vec<u8>,
    sources: Vec<PathBuf>,
    digest: Sha256,
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
            digest: Sha256::new(),
        };
        for path in paths {
            set.append_file(path.as_ref(), layout)?;
        }
        Ok(set)
    }

    /// Reads the sample shipped for `dataset`: `data_dir/images/<dataset.shipped_file()>`,
    /// one label byte per record, checked against the manifest shipped beside it
    /// (`<stem>_manifest.csv`, one row per record with its label): a file that lost whole
    /// records, or whose records were reordered, is an error rather than a smaller sample.
    pub fn read_shipped(data_dir: &Path, dataset: Dataset) -> Result<ImageSet, DataError> {
        let path = data_dir.join("images").join(dataset.shipped_file());
        let set = ImageSet::read(std::slice::from_ref(&path), dataset, LabelLayout::OneByte)?;
        let manifest = path.with_file_name(format!(
            "{}_manifest.csv",
            dataset.shipped_file().trim_end_matches(".bin")
        ));
        set.check_manifest(&path, &manifest)?;
        Ok(set)
    }

    /// Checks the record count and every label against a manifest CSV whose header has a
    /// `label` column.
    fn check_manifest(&self, path: &Path, manifest: &Path) -> Result<(), DataError> {
        let text = std::fs::read_to_string(manifest).map_err(|source| DataError::Io {
            path: manifest.to_owned(),
            source,
        })?;
        let bad = |reason: String| DataError::Manifest {
            path: path.to_owned(),
            manifest: manifest.to_owned(),
            reason,
        };
        let mut lines = text.lines().filter(|l| !l.trim().is_empty());
        let header = lines
            .next()
            .ok_or_else(|| bad("the manifest is empty".into()))?;
        let column = header
            .split(',')
            .position(|c| c.trim() == "label")
            .ok_or_else(|| bad("the manifest has no `label` column".into()))?;
        let labels = lines
            .enumerate()
            .map(|(i, line)| {
                line.split(',')
                    .nth(column)
                    .and_then(|v| v.trim().parse::<u16>().ok())
                    .ok_or_else(|| bad(format!("manifest row {i} has no valid label")))
            })
            .collect::<Result<Vec<u16>, DataError>>()?;
        if labels.len() != self.len() {
            return Err(bad(format!(
                "the file holds {} records but the manifest lists {}",
                self.len(),
                labels.len()
            )));
        }
        if let Some(i) = (0..labels.len()).find(|&i| labels[i] != self.labels[i]) {
            return Err(bad(format!(
                "record {i} has label {} but the manifest says {}",
                self.labels[i], labels[i]
            )));
        }
        Ok(())
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
        self.digest.update(&bytes);
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

    /// SHA-256 (lower-case hex) of the bytes of every file read, concatenated in order: for a
    /// single file, what `sha256sum FILE` prints. It identifies the data a result was computed on.
    pub fn sha256(&self) -> String {
        self.digest
            .clone()
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
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
