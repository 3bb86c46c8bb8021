//! Reading the shipped image files and malformed inputs.

mod common;

use std::path::Path;

use common::{DATA_DIR, TempFile, records};
use zc_data::{DataError, Dataset, ImageSet, LabelLayout};

fn shipped(dataset: Dataset) -> ImageSet {
    ImageSet::read_shipped(Path::new(DATA_DIR), dataset).unwrap()
}

/// `(label, class_name)` of every manifest row.
fn manifest(dataset: Dataset) -> Vec<(u16, String)> {
    let file = dataset.shipped_file().replace(".bin", "_manifest.csv");
    let text = std::fs::read_to_string(Path::new(DATA_DIR).join("images").join(file)).unwrap();
    text.lines()
        .skip(1)
        .map(|line| {
            let cols: Vec<&str> = line.split(',').collect();
            (cols[1].parse().unwrap(), cols[2].to_owned())
        })
        .collect()
}

#[test]
fn shipped_files_have_expected_records_and_classes() {
    for (dataset, n) in Dataset::ALL.into_iter().zip([1000, 846, 278]) {
        let set = shipped(dataset);
        assert_eq!(set.len(), n, "{dataset}");
        assert_eq!(set.dataset(), dataset);
        assert_eq!(set.resolution(), dataset.resolution());
        assert_eq!(set.image(n - 1).len(), 3 * dataset.resolution().pow(2));
        let counts = set.class_counts();
        assert_eq!(counts.len(), dataset.num_classes());
        assert!(
            counts.iter().all(|&c| c > 0),
            "{dataset}: every class present"
        );
        assert_eq!(counts.iter().sum::<usize>(), n);
        // Labels agree with the manifest, record by record.
        let rows = manifest(dataset);
        assert_eq!(rows.len(), n);
        assert!(
            rows.iter()
                .enumerate()
                .all(|(i, (l, _))| set.label(i) == *l)
        );
    }
    assert_eq!(shipped(Dataset::Cifar10).class_counts(), vec![100; 10]);
    let cifar100 = shipped(Dataset::Cifar100).class_counts();
    assert_eq!(cifar100.iter().min(), Some(&2));
    assert_eq!(cifar100.iter().max(), Some(&18));
}

#[test]
fn first_cifar10_record_is_an_airplane() {
    let set = shipped(Dataset::Cifar10);
    assert_eq!(manifest(Dataset::Cifar10)[0], (0, "airplane".to_owned()));
    assert_eq!(set.label(0), 0);
    // Record 0 pixels are bytes 1..3073 of the file.
    let raw = std::fs::read(Path::new(DATA_DIR).join("images/cifar10_train_1000.bin")).unwrap();
    assert_eq!(set.image(0), &raw[1..3073]);
    assert_eq!(set.image(1), &raw[3074..6146]);
}

#[test]
fn truncated_file_errors_with_path() {
    let raw = std::fs::read(Path::new(DATA_DIR).join("images/cifar10_train_1000.bin")).unwrap();
    let file = TempFile::new("truncated", &raw[..2 * 3073 + 100]);
    let err = ImageSet::read(&[file.path()], Dataset::Cifar10, LabelLayout::OneByte).unwrap_err();
    assert!(
        matches!(err, DataError::Truncated { len: 6246, .. }),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(msg.contains(&file.path().display().to_string()), "{msg}");
    assert!(msg.contains("6,246 bytes") && msg.contains("3,073-byte") && msg.contains("truncated"));
}

#[test]
fn wrong_resolution_is_reported() {
    let path = Path::new(DATA_DIR).join("images/imagenet16_120_derived_278.bin");
    let err = ImageSet::read(&[&path], Dataset::Cifar100, LabelLayout::OneByte).unwrap_err();
    assert!(
        matches!(
            err,
            DataError::LayoutMismatch {
                found_resolution: 16,
                ..
            }
        ),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("imagenet16_120_derived_278.bin") && msg.contains("769-byte"),
        "{msg}"
    );
}

#[test]
fn label_out_of_range_errors() {
    let pixels = [7u8; 3072];
    let bytes = records([(3, &pixels[..]), (9, &pixels[..]), (200, &pixels[..])]);
    let file = TempFile::new("label", &bytes);
    let err = ImageSet::read(&[file.path()], Dataset::Cifar10, LabelLayout::OneByte).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(
            err,
            DataError::LabelOutOfRange {
                record: 2,
                label: 200,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(msg.contains(&file.path().display().to_string()));
    assert!(msg.contains("record 2") && msg.contains("label 200") && msg.contains("10 classes"));
    // The same file is fine as CIFAR-100 only if every label is below 100.
    assert!(ImageSet::read(&[file.path()], Dataset::Cifar100, LabelLayout::OneByte).is_err());
}

#[test]
fn missing_and_empty_files_error() {
    let missing = Path::new(DATA_DIR).join("images/no_such_file.bin");
    let err = ImageSet::read(&[&missing], Dataset::Cifar10, LabelLayout::OneByte).unwrap_err();
    assert!(matches!(err, DataError::Io { .. }));
    assert!(err.to_string().contains("no_such_file.bin"));
    let err = ImageSet::read_shipped(Path::new("/nonexistent"), Dataset::Cifar10).unwrap_err();
    assert!(
        err.to_string()
            .contains("/nonexistent/images/cifar10_train_1000.bin")
    );

    let empty = TempFile::new("empty", &[]);
    let err = ImageSet::read(&[empty.path()], Dataset::Cifar10, LabelLayout::OneByte).unwrap_err();
    assert!(matches!(err, DataError::Empty { .. }));
    assert!(
        err.to_string()
            .contains(&empty.path().display().to_string())
    );

    let none: [&Path; 0] = [];
    assert!(matches!(
        ImageSet::read(&none, Dataset::Cifar10, LabelLayout::OneByte),
        Err(DataError::NoFiles { .. })
    ));
}

#[test]
fn coarse_fine_layout_uses_fine_label() {
    let mut bytes = Vec::new();
    for (coarse, fine, value) in [(4u8, 30u8, 11u8), (19, 99, 22)] {
        bytes.extend_from_slice(&[coarse, fine]);
        bytes.extend(std::iter::repeat_n(value, 3072));
    }
    let file = TempFile::new("coarse-fine", &bytes);
    let set = ImageSet::read(&[file.path()], Dataset::Cifar100, LabelLayout::CoarseFine).unwrap();
    assert_eq!(set.len(), 2);
    assert_eq!(set.labels(), &[30, 99]);
    assert!(set.image(0).iter().all(|&v| v == 11));
    assert!(set.image(1).iter().all(|&v| v == 22));
    // Read with one label byte, the 3,074-byte records are recognised.
    let err = ImageSet::read(&[file.path()], Dataset::Cifar100, LabelLayout::OneByte).unwrap_err();
    assert!(
        matches!(
            err,
            DataError::LayoutMismatch {
                found_layout: LabelLayout::CoarseFine,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn files_are_concatenated_in_order() {
    let a = [1u8; 768];
    let b = [2u8; 768];
    let first = TempFile::new("first", &records([(5, &a[..]), (119, &a[..])]));
    let second = TempFile::new("second", &records([(0, &b[..])]));
    let set = ImageSet::read(
        &[first.path(), second.path()],
        Dataset::ImageNet16_120,
        LabelLayout::OneByte,
    )
    .unwrap();
    assert_eq!(set.len(), 3);
    assert_eq!(set.labels(), &[5, 119, 0]);
    assert_eq!(set.image(1), &a[..]);
    assert_eq!(set.image(2), &b[..]);
    assert_eq!(
        set.sources(),
        &[first.path().to_owned(), second.path().to_owned()]
    );
    let counts = set.class_counts();
    assert_eq!((counts[0], counts[5], counts[119], counts[1]), (1, 1, 1, 0));
}

#[test]
fn a_shipped_file_short_of_its_manifest_or_reordered_is_an_error() {
    let dir = std::env::temp_dir().join(format!("zc-data-manifest-{}", std::process::id()));
    let images = dir.join("images");
    std::fs::create_dir_all(&images).unwrap();
    let name = Dataset::ImageNet16_120.shipped_file();
    let manifest = name.replace(".bin", "_manifest.csv");
    let raw = std::fs::read(Path::new(DATA_DIR).join("images").join(name)).unwrap();
    std::fs::copy(
        Path::new(DATA_DIR).join("images").join(&manifest),
        images.join(&manifest),
    )
    .unwrap();
    let record = 1 + 3 * 16 * 16;
    // One whole record short: a valid-looking file of 277 images.
    std::fs::write(images.join(name), &raw[..raw.len() - record]).unwrap();
    let err = ImageSet::read_shipped(&dir, Dataset::ImageNet16_120).unwrap_err();
    assert!(matches!(err, DataError::Manifest { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("holds 277 records but the manifest lists 278"),
        "{err}"
    );
    // Two records swapped: the labels disagree with the manifest.
    let mut swapped = raw.clone();
    let (first, second) = swapped.split_at_mut(record);
    first.swap_with_slice(&mut second[..record]);
    assert_ne!(
        raw[0], raw[record],
        "the first two records have different labels"
    );
    std::fs::write(images.join(name), &swapped).unwrap();
    let err = ImageSet::read_shipped(&dir, Dataset::ImageNet16_120).unwrap_err();
    assert!(err.to_string().contains("record 0 has label"), "{err}");
    // The shipped file itself matches, and its digest is what sha256sum prints.
    std::fs::write(images.join(name), &raw).unwrap();
    let set = ImageSet::read_shipped(&dir, Dataset::ImageNet16_120).unwrap();
    assert_eq!(
        set.sha256(),
        "b75f6f03c7c5f6ec5de11ef382d0dea32d516e125f7d5463541a9669b18773dc"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
