#!/usr/bin/env python3
"""Convert the official ImageNet16 pickles to the binary layout of ImageNet16-120.

The downsampled-ImageNet 16x16 release ("ImageNet16": train_data_batch_1 ... train_data_batch_10
and val_data) stores each file as a pickle of a dict with

* 'data':   uint8 [N, 768], each row the planar R, G, B planes of a 16x16 image, row-major;
* 'labels': N class ids, 1-based (1..1000).

ImageNet16-120 (NAS-Bench-201) keeps the images whose class id is 1..120. This script writes
them, in input order, as 769-byte records: one label byte (class id - 1, so 0..119), then the
768 pixel bytes -- the layout `zc_data::ImageSet` reads (like the CIFAR-10 binary batches).

Usage:
    python3 scripts/imagenet16_to_bin.py --input-dir DIR --split train|val --output FILE

Only the standard library is used by this script; unpickling the official files needs numpy
installed, because their 'data' entries are numpy arrays. The output is written to a temporary
file next to FILE and moved into place only when complete.
"""

import argparse
import os
import pickle
import sys
import tempfile

PIXELS = 3 * 16 * 16
NUM_CLASSES = 120
SPLIT_FILES = {
    "train": [f"train_data_batch_{i}" for i in range(1, 11)],
    "val": ["val_data"],
}


class ConversionError(Exception):
    """A problem with the input files, reported without a traceback."""


def load_batch(path):
    """Return (pixel bytes of all rows, labels) of one pickle file."""
    try:
        with open(path, "rb") as f:
            entry = pickle.load(f, encoding="latin1")
    except ModuleNotFoundError as e:
        raise ConversionError(f"{path}: unpickling needs the module {e.name!r} (pip install {e.name})")
    except Exception as e:  # unpickling raises many kinds on a corrupt file
        raise ConversionError(f"{path}: cannot read pickle: {e!r}")
    if not isinstance(entry, dict) or "data" not in entry or "labels" not in entry:
        raise ConversionError(f"{path}: expected a dict with 'data' and 'labels'")
    try:
        data, labels = entry["data"], [int(label) for label in entry["labels"]]
    except (TypeError, ValueError) as e:
        raise ConversionError(f"{path}: 'labels' are not integers: {e}")
    if hasattr(data, "tobytes"):  # numpy array, as in the official files
        if str(getattr(data, "dtype", "uint8")) != "uint8":
            raise ConversionError(f"{path}: 'data' has dtype {data.dtype}, expected uint8")
        flat = data.tobytes(order="C")
    else:  # rows as sequences of ints or bytes
        try:
            flat = b"".join(bytes(row) for row in data)
        except (TypeError, ValueError) as e:
            raise ConversionError(f"{path}: 'data' rows are not uint8 sequences: {e}")
    if len(flat) != len(labels) * PIXELS:
        raise ConversionError(
            f"{path}: 'data' holds {len(flat)} bytes, expected {len(labels)} labels x {PIXELS}"
        )
    bad = next((label for label in labels if not 1 <= label <= 1000), None)
    if bad is not None:
        raise ConversionError(f"{path}: label {bad} outside the 1-based range 1..1000")
    return flat, labels


def convert(input_dir, split, output):
    """Write the ImageNet16-120 records of `split`; return (records, per-class counts)."""
    paths = [os.path.join(input_dir, name) for name in SPLIT_FILES[split]]
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        raise ConversionError("missing input file(s): " + ", ".join(missing))
    counts = [0] * NUM_CLASSES
    out_dir = os.path.dirname(os.path.abspath(output))
    if not os.path.isdir(out_dir):
        raise ConversionError(f"output folder {out_dir} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=".imagenet16-", suffix=".tmp", dir=out_dir)
    try:
        with os.fdopen(fd, "wb") as out:
            for path in paths:
                flat, labels = load_batch(path)
                for i, label in enumerate(labels):
                    if label <= NUM_CLASSES:
                        out.write(bytes([label - 1]))
                        out.write(flat[i * PIXELS:(i + 1) * PIXELS])
                        counts[label - 1] += 1
                print(f"{path}: {len(labels)} images", file=sys.stderr)
        os.replace(tmp, output)
    except BaseException:
        os.unlink(tmp)
        raise
    return sum(counts), counts


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input-dir", required=True, help="folder with the ImageNet16 pickles")
    parser.add_argument("--split", required=True, choices=sorted(SPLIT_FILES))
    parser.add_argument("--output", required=True, help="binary file to write")
    args = parser.parse_args()
    try:
        n, counts = convert(args.input_dir, args.split, args.output)
    except ConversionError as e:
        sys.exit(f"error: {e}")
    if n == 0:
        print(f"warning: no images of classes 1..{NUM_CLASSES} found", file=sys.stderr)
    print(
        f"wrote {n} records ({n * (PIXELS + 1)} bytes) to {args.output}; "
        f"images per class {min(counts)}..{max(counts)}",
    )


if __name__ == "__main__":
    main()
