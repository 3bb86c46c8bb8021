//! Convolution kernels for NB201's shapes on host memory: `gemm` products over copies of the
//! input, a group of images at a time, NCHW in and out (no layout conversion), no bias, square
//! kernels, zero padding.
//!
//! A convolution that keeps the map's size (every 3x3 and 1x1 of the cells) reads [`Strips`]:
//! each input channel copied once per kernel column, shifted; kernel row `ky` is a view of them
//! `ky` image rows on, so `Y = Σ_ky W[:, :, ky, :] · strips(ky)`. Its input gradient is the
//! forward convolution of `dY` by the flipped kernel with its channels swapped, and its weight
//! gradient one product of the kernel rows' shifted copies of `dY` by the strips. A sum of two
//! convolutions of one geometry (a tangent's two terms) is one product over both inputs' strips.
//! A strided convolution uses im2col (`col(X)`, the `C_in·k·k` shifted copies) and col2im.

use std::mem::MaybeUninit;

use gemm::{Parallelism, gemm};

use super::Scalar;

/// The shape of one convolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Geometry {
    /// Images in the batch.
    pub batch: usize,
    /// Input channels.
    pub c_in: usize,
    /// Output channels.
    pub c_out: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Kernel side.
    pub kernel: usize,
    /// Stride (both directions).
    pub stride: usize,
    /// Zero padding (all sides).
    pub pad: usize,
}

impl Geometry {
    /// Output height.
    pub fn h_out(&self) -> usize {
        (self.h + 2 * self.pad - self.kernel) / self.stride + 1
    }

    /// Output width.
    pub fn w_out(&self) -> usize {
        (self.w + 2 * self.pad - self.kernel) / self.stride + 1
    }

    fn in_plane(&self) -> usize {
        self.h * self.w
    }

    fn out_plane(&self) -> usize {
        self.h_out() * self.w_out()
    }

    /// Rows of `col`: `C_in·k·k`.
    fn col_rows(&self) -> usize {
        self.c_in * self.kernel * self.kernel
    }

    /// Images per matrix product: enough for about 256 columns, so that small maps (8x8 and
    /// under) are not one tiny product per image. Larger groups (1,024 columns: four 16x16
    /// maps) measured 2-3% slower per cell: a group's product is copied to the images' places.
    fn group(&self) -> usize {
        (256 / self.out_plane()).clamp(1, self.batch.max(1))
    }

    /// Row stride of `col`: a group's planes plus a cache line, so that rows 4 KiB apart (a
    /// 32x32 plane) do not all map to the same cache sets when gemm walks down a column (that
    /// made the weight gradient of 32x32 maps 5x slower).
    fn col_ld(&self) -> usize {
        self.group() * self.out_plane() + 16
    }

    /// Elements per image in [`Strips`]: its rows and the `pad` zero rows below them.
    fn strip_block(&self) -> usize {
        (self.h + self.pad) * self.w
    }

    /// Columns of a product over the strips of `count` images: image `j`'s output plane starts
    /// at column `j·strip_block`, and the `pad` rows after it belong to no output.
    fn strip_width(&self, count: usize) -> usize {
        (count - 1) * self.strip_block() + self.out_plane()
    }

    /// Row stride of [`Strips`]: a group's images with their zero rows, plus a cache line (as
    /// [`Geometry::col_ld`]).
    fn strip_ld(&self) -> usize {
        self.pad * self.w + self.group() * self.strip_block() + 16
    }

    /// A stride-1 convolution whose output has the input's size (`2·pad = k - 1`): each kernel
    /// offset reads the image shifted by a constant.
    fn keeps_width(&self) -> bool {
        self.stride == 1 && 2 * self.pad + 1 == self.kernel
    }

    /// A 1x1, stride-1, unpadded convolution reads the image itself as its `col`.
    fn is_pointwise(&self) -> bool {
        self.kernel == 1 && self.stride == 1 && self.pad == 0
    }

    /// Elements of the input, weight and output.
    #[cfg(test)]
    pub fn sizes(&self) -> (usize, usize, usize) {
        (
            self.batch * self.c_in * self.in_plane(),
            self.c_out * self.col_rows(),
            self.batch * self.c_out * self.out_plane(),
        )
    }
}

/// For kernel offset `kx`, the output columns whose input column `ox·s + kx - pad` lies inside
/// `0..len`.
fn valid_range(g: &Geometry, offset: usize, len: usize, out_len: usize) -> std::ops::Range<usize> {
    let s = g.stride;
    // ox·s + offset >= pad  <=>  ox >= ceil((pad - offset) / s)
    let lo = g.pad.saturating_sub(offset).div_ceil(s);
    // ox·s + offset - pad <= len - 1  <=>  ox <= (len - 1 + pad - offset) / s
    let hi = match (len + g.pad).checked_sub(offset + 1) {
        Some(last) => (last / s + 1).min(out_len),
        None => 0,
    };
    lo..hi.max(lo)
}

/// What a convolution reads: `x`, or, with a mask, `x` where `mask <= 0` does not hold and 0
/// elsewhere (`relu(x)` is `x` masked by itself, NaN passing as through PyTorch's ReLU). The
/// masking happens while the input is copied into `col`, so the masked input is never stored.
#[derive(Clone, Copy)]
pub(crate) struct Input<'a, T> {
    /// The values.
    pub x: &'a [T],
    /// The mask source, shaped as `x`.
    pub mask: Option<&'a [T]>,
}

impl<'a, T: Scalar> Input<'a, T> {
    /// `x` unmasked.
    pub fn plain(x: &'a [T]) -> Self {
        Input { x, mask: None }
    }

    /// Elements `range` of the input.
    fn slice(&self, range: std::ops::Range<usize>) -> Self {
        Input {
            x: &self.x[range.clone()],
            mask: self.mask.map(|m| &m[range]),
        }
    }
}

// multiversion runs the first of its targets that the CPU supports, so the widest comes first.
/// `dst = src` where `mask <= 0` does not hold, else 0 (all of equal length).
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512cd+avx512dq+avx512vl",
    "x86_64+avx2+fma"
))]
fn masked_copy<T: Scalar>(dst: &mut [T], src: &[T], mask: &[T]) {
    let n = dst.len();
    let (src, mask) = (&src[..n], &mask[..n]);
    for i in 0..n {
        dst[i] = if mask[i] <= T::default() {
            T::default()
        } else {
            src[i]
        };
    }
}

/// Zeroes the entries of `v` where `mask <= 0`: the ReLU's backward on a gradient.
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512cd+avx512dq+avx512vl",
    "x86_64+avx2+fma"
))]
fn apply_mask<T: Scalar>(mask: &[T], v: &mut [T]) {
    let n = v.len();
    let mask = &mask[..n];
    for i in 0..n {
        if mask[i] <= T::default() {
            v[i] = T::default();
        }
    }
}

/// `col[(ci, ky, kx), offset + (oy, ox)] = x[ci, oy·s + ky - pad, ox·s + kx - pad]` (zero
/// outside): one image's patches, in columns `offset..offset + plane` of `col`, row by row.
fn im2col<T: Scalar>(g: &Geometry, x: &[T], col: &mut [T], offset: usize) {
    let (k, s, w_out, h_out) = (g.kernel, g.stride, g.w_out(), g.h_out());
    let (plane, ld) = (g.out_plane(), g.col_ld());
    for ci in 0..g.c_in {
        let image = &x[ci * g.in_plane()..(ci + 1) * g.in_plane()];
        for ky in 0..k {
            let rows = valid_range(g, ky, g.h, h_out);
            for kx in 0..k {
                let cols = valid_range(g, kx, g.w, w_out);
                let dst = &mut col[((ci * k + ky) * k + kx) * ld + offset..][..plane];
                dst.fill(T::default());
                for oy in rows.clone() {
                    let src = (oy * s + ky - g.pad) * g.w;
                    let out = &mut dst[oy * w_out..(oy + 1) * w_out];
                    if s == 1 {
                        let from = src + cols.start + kx - g.pad;
                        out[cols.clone()].copy_from_slice(&image[from..from + cols.len()]);
                    } else {
                        for ox in cols.clone() {
                            out[ox] = image[src + ox * s + kx - g.pad];
                        }
                    }
                }
            }
        }
    }
}

/// The strips of a group of images, for a [`Geometry::keeps_width`] convolution: row
/// `(ci, kx)` of a `[C_in·k, ld]` matrix holds every image's channel `ci` shifted by the column
/// offset `kx - pad` (zero where that leaves the image), the images one below the other with
/// `pad` zero rows above, between and below them. Kernel row `ky` reads the strips `ky` image
/// rows further on, so `W · col(X)` is the sum over `ky` of `W[:, :, ky, :]` times that view of
/// the strips: a third of im2col's copying for a 3x3 kernel, and no copy at all for the image of
/// an unmasked 1x1 convolution. Between two images, a product over the strips has `pad` rows of
/// columns that belong to no output ([`Geometry::strip_width`]).
struct Strips<T> {
    data: Vec<T>,
    /// Scratch for one masked image (a cache-sized copy), masked once rather than at each of
    /// the `k` shifts that read it.
    masked: Vec<T>,
}

impl<T: Scalar> Strips<T> {
    /// Strips for `inputs` inputs of geometry `g`, one above the other.
    fn new(g: &Geometry, inputs: usize) -> Self {
        Strips {
            data: vec![T::default(); inputs * g.c_in * g.kernel * g.strip_ld()],
            masked: Vec::new(),
        }
    }

    /// Fills the strips with images `n..n + count` of each of `inputs` (the rows of input `i`
    /// after those of the ones before it), or views the image itself for a single unmasked image
    /// of a 1x1 convolution.
    fn fill<'a>(
        &'a mut self,
        g: &Geometry,
        inputs: &[Input<'a, T>],
        (n, count): (usize, usize),
    ) -> StripView<'a, T> {
        let (k, plane, ld) = (g.kernel, g.in_plane(), g.strip_ld());
        let image_len = g.c_in * plane;
        let (rows, width) = (inputs.len() * g.c_in * k, g.strip_width(count));
        if let [x] = inputs
            && g.is_pointwise()
            && count == 1
            && x.mask.is_none()
        {
            let data = &x.x[n * image_len..][..image_len];
            return StripView {
                data,
                rows,
                width,
                ld: width,
                row_step: 0,
            };
        }
        for (i, x) in inputs.iter().enumerate() {
            for j in 0..count {
                let image = x.slice((n + j) * image_len..(n + j + 1) * image_len);
                let image = match image.mask {
                    Some(mask) => {
                        self.masked.resize(image_len, T::default());
                        masked_copy(&mut self.masked, image.x, mask);
                        &self.masked[..]
                    }
                    None => image.x,
                };
                for ci in 0..g.c_in {
                    let channel = &image[ci * plane..][..plane];
                    for kx in 0..k {
                        let row = (i * g.c_in + ci) * k + kx;
                        let at = row * ld + g.pad * g.w + j * g.strip_block();
                        shifted_copy(&mut self.data[at..][..plane], channel, kx, g);
                    }
                }
            }
        }
        StripView {
            data: &self.data,
            rows,
            width,
            ld,
            row_step: g.w,
        }
    }
}

/// A group's strips as kernel rows read them.
#[derive(Clone, Copy)]
struct StripView<'a, T> {
    data: &'a [T],
    rows: usize,
    width: usize,
    ld: usize,
    /// Elements from one kernel row's view to the next's (an image row).
    row_step: usize,
}

impl<'a, T> StripView<'a, T> {
    /// What kernel row `ky` reads: `[C_in·k, width]`, row `(ci, kx)` column `q` holding
    /// `col(X)[(ci, ky, kx), q]`.
    fn row(&self, ky: usize) -> Mat<'a, T> {
        Mat::strided(
            &self.data[ky * self.row_step..],
            self.rows,
            self.width,
            self.ld,
        )
    }
}

/// `dst[(r, c)] = src[(r, c + kx - pad)]` over one `w`-wide plane, zero where `c + kx - pad`
/// leaves `0..w`: one contiguous copy, then the edge columns zeroed.
fn shifted_copy<T: Scalar>(dst: &mut [T], src: &[T], kx: usize, g: &Geometry) {
    let (n, w) = (dst.len(), g.w);
    let zero = T::default();
    if kx >= g.pad {
        let a = kx - g.pad;
        if a >= w {
            return dst.fill(zero);
        }
        dst[..n - a].copy_from_slice(&src[a..]);
        for row in dst.chunks_mut(w) {
            row[w - a..].fill(zero);
        }
    } else {
        let a = g.pad - kx;
        if a >= w {
            return dst.fill(zero);
        }
        dst[a..].copy_from_slice(&src[..n - a]);
        for row in dst.chunks_mut(w) {
            row[..a].fill(zero);
        }
    }
}

/// The adjoint of [`im2col`] for any stride, row by row: adds each entry of columns
/// `offset..offset + plane` of `col` into the input position it was read from.
fn col2im<T: Scalar>(g: &Geometry, col: &[T], dx: &mut [T], offset: usize) {
    let (k, s, w_out, h_out) = (g.kernel, g.stride, g.w_out(), g.h_out());
    let (plane, ld) = (g.out_plane(), g.col_ld());
    for ci in 0..g.c_in {
        let image = &mut dx[ci * g.in_plane()..(ci + 1) * g.in_plane()];
        for ky in 0..k {
            let rows = valid_range(g, ky, g.h, h_out);
            for kx in 0..k {
                let cols = valid_range(g, kx, g.w, w_out);
                let src = &col[((ci * k + ky) * k + kx) * ld + offset..][..plane];
                for oy in rows.clone() {
                    let dst = &mut image[(oy * s + ky - g.pad) * g.w..][..g.w];
                    let row = &src[oy * w_out..(oy + 1) * w_out];
                    if s == 1 {
                        let start = cols.start + kx - g.pad;
                        let dst = &mut dst[start..start + cols.len()];
                        for (d, v) in dst.iter_mut().zip(&row[cols.clone()]) {
                            *d += *v;
                        }
                    } else {
                        for ox in cols.clone() {
                            dst[ox * s + kx - g.pad] += row[ox];
                        }
                    }
                }
            }
        }
    }
}

/// A view of a stored row-major matrix (row stride `ld`), possibly read transposed.
#[derive(Clone, Copy)]
struct Mat<'a, T> {
    ptr: *const T,
    _data: std::marker::PhantomData<&'a [T]>,
    rows: usize,
    cols: usize,
    /// Row stride of the stored matrix.
    ld: usize,
    /// `true` reads the stored `[cols, rows]` matrix transposed.
    transposed: bool,
}

impl<'a, T> Mat<'a, T> {
    /// A stored `[rows, cols]` matrix with row stride `ld`.
    fn strided(data: &'a [T], rows: usize, cols: usize, ld: usize) -> Self {
        assert!(
            rows == 0 || data.len() >= (rows - 1) * ld + cols,
            "matrix view out of bounds"
        );
        Mat {
            ptr: data.as_ptr(),
            _data: std::marker::PhantomData,
            rows,
            cols,
            ld,
            transposed: false,
        }
    }

    /// A stored contiguous `[rows, cols]` matrix.
    fn new(data: &'a [T], rows: usize, cols: usize) -> Self {
        Self::strided(data, rows, cols, cols)
    }

    /// Reads the matrix transposed.
    fn t(self) -> Self {
        Mat {
            rows: self.cols,
            cols: self.rows,
            transposed: !self.transposed,
            ..self
        }
    }

    /// (row stride, column stride) in elements.
    fn strides(&self) -> (isize, isize) {
        if self.transposed {
            (1, self.ld as isize)
        } else {
            (self.ld as isize, 1)
        }
    }
}

/// `dst (+)= a · b` with `dst` row-major `[a.rows, b.cols]` of row stride `ld`; adds to `dst`
/// when `accumulate` (which `dst` must then hold initialised), else only writes it.
fn matmul<T: Scalar>(
    dst: &mut [MaybeUninit<T>],
    ld: usize,
    a: Mat<'_, T>,
    b: Mat<'_, T>,
    accumulate: bool,
) {
    matmul_strided(dst, (ld, 1), a, b, accumulate);
}

/// [`matmul`] into `dst` with element `(i, j)` at `i·row_stride + j·col_stride`.
fn matmul_strided<T: Scalar>(
    dst: &mut [MaybeUninit<T>],
    (row_stride, col_stride): (usize, usize),
    a: Mat<'_, T>,
    b: Mat<'_, T>,
    accumulate: bool,
) {
    assert_eq!(a.cols, b.rows, "inner dimensions");
    let (m, n, k) = (a.rows, b.cols, a.cols);
    assert!(
        m == 0 || n == 0 || dst.len() > (m - 1) * row_stride + (n - 1) * col_stride,
        "product out of bounds"
    );
    let (a_rs, a_cs) = a.strides();
    let (b_rs, b_cs) = b.strides();
    // SAFETY: the views were checked against their slices' lengths above, `dst` is a distinct
    // mutable slice of at least m·n elements, and gemm reads/writes only inside those extents;
    // it reads `dst` only when `accumulate` (then initialised, as the caller guarantees).
    unsafe {
        gemm(
            m,
            n,
            k,
            dst.as_mut_ptr().cast::<T>(),
            col_stride as isize,
            row_stride as isize,
            accumulate,
            a.ptr,
            a_cs,
            a_rs,
            b.ptr,
            b_cs,
            b_rs,
            T::ONE,
            T::ONE,
            false,
            false,
            false,
            Parallelism::None,
        );
    }
}

/// An initialised buffer as memory for [`matmul`] to write (or add to).
fn out<T>(v: &mut [T]) -> &mut [MaybeUninit<T>] {
    // SAFETY: `MaybeUninit<T>` has `T`'s layout, and the kernels write only initialised values
    // through the result, so `v` stays initialised.
    unsafe { &mut *(v as *mut [T] as *mut [MaybeUninit<T>]) }
}

/// The `col` scratch buffer of one group of images.
fn col_buffer<T: Scalar>(g: &Geometry) -> Vec<T> {
    vec![T::default(); g.col_rows() * g.col_ld()]
}

/// The groups of images: `(first image, images)`.
fn groups(g: &Geometry) -> impl Iterator<Item = (usize, usize)> {
    let (size, batch) = (g.group(), g.batch);
    (0..batch)
        .step_by(size)
        .map(move |n| (n, size.min(batch - n)))
}

/// `col` of images `n..n + count` side by side, as a `[C_in·k·k, count·plane]` matrix, by
/// [`im2col`] into `buffer`. A masked image is masked once into `masked` (a cache-sized copy)
/// rather than at each of the `k²` offsets that read it.
fn col_of<'a, T: Scalar>(
    g: &Geometry,
    x: Input<'a, T>,
    (n, count): (usize, usize),
    buffer: &'a mut [T],
    masked: &mut Vec<T>,
) -> Mat<'a, T> {
    let image_len = g.c_in * g.in_plane();
    let plane = g.out_plane();
    for j in 0..count {
        let image = x.slice((n + j) * image_len..(n + j + 1) * image_len);
        match image.mask {
            Some(mask) => {
                masked.resize(image_len, T::default());
                masked_copy(masked, image.x, mask);
                im2col(g, masked, buffer, j * plane);
            }
            None => im2col(g, image.x, buffer, j * plane),
        }
    }
    Mat::strided(buffer, g.col_rows(), count * plane, g.col_ld())
}

/// `dy` of images `n..n + count` as a `[C_out, count·plane]` matrix: a view for one image, else
/// gathered into `buffer`.
fn grad_of<'a, T: Scalar>(
    g: &Geometry,
    dy: &'a [T],
    (n, count): (usize, usize),
    buffer: &'a mut Vec<T>,
) -> Mat<'a, T> {
    let plane = g.out_plane();
    let image_len = g.c_out * plane;
    if count == 1 {
        return Mat::new(&dy[n * image_len..][..image_len], g.c_out, plane);
    }
    buffer.resize(g.c_out * count * plane, T::default());
    for j in 0..count {
        for co in 0..g.c_out {
            let src = &dy[(n + j) * image_len + co * plane..][..plane];
            buffer[(co * count + j) * plane..][..plane].copy_from_slice(src);
        }
    }
    Mat::new(buffer, g.c_out, count * plane)
}

/// Forward: `y = conv(x, weight)`, all NCHW / OIHW and contiguous; writes all of `y` (which may
/// be uninitialised).
pub(crate) fn forward<T: Scalar>(
    g: &Geometry,
    x: Input<'_, T>,
    weight: &[T],
    y: &mut [MaybeUninit<T>],
) {
    forward_sum(g, &[(x, weight)], y);
}

/// `y = Σ_i conv(x_i, weight_i)` over `terms` `(x_i, weight_i)` of one geometry: for a
/// size-keeping convolution, one product over the inputs' strips stacked (a tangent's
/// `W·dx + dW·x` without a second output to add).
pub(crate) fn forward_sum<T: Scalar>(
    g: &Geometry,
    terms: &[(Input<'_, T>, &[T])],
    y: &mut [MaybeUninit<T>],
) {
    if g.keeps_width() {
        forward_by_strips(g, terms, y);
    } else {
        forward_by_col(g, terms, y);
    }
}

/// [`forward_sum`] for any geometry: `Σ_i W_i · col(X_i)`.
fn forward_by_col<T: Scalar>(
    g: &Geometry,
    terms: &[(Input<'_, T>, &[T])],
    y: &mut [MaybeUninit<T>],
) {
    let (rows, plane) = (g.col_rows(), g.out_plane());
    let (mut col, mut masked) = (col_buffer(g), Vec::new());
    let mut product = Vec::new();
    for (n, count) in groups(g) {
        if count == 1 {
            let out = &mut y[n * g.c_out * plane..][..g.c_out * plane];
            for (i, &(x, weight)) in terms.iter().enumerate() {
                let col = col_of(g, x, (n, count), &mut col, &mut masked);
                matmul(out, plane, Mat::new(weight, g.c_out, rows), col, i > 0);
            }
            continue;
        }
        // [C_out, count·plane] for the group, then each image's planes to their NCHW place.
        product.resize(g.c_out * count * plane, T::default());
        for (i, &(x, weight)) in terms.iter().enumerate() {
            let col = col_of(g, x, (n, count), &mut col, &mut masked);
            let w = Mat::new(weight, g.c_out, rows);
            matmul(out(&mut product), count * plane, w, col, i > 0);
        }
        scatter_planes(g, &product, count * plane, plane, (n, count), y);
    }
}

/// Copies a group's product `[C_out, ·]` (row stride `ld`, image `j`'s plane at column
/// `j·step`) to the images' NCHW places in `y`.
fn scatter_planes<T: Scalar>(
    g: &Geometry,
    product: &[T],
    ld: usize,
    step: usize,
    (n, count): (usize, usize),
    y: &mut [MaybeUninit<T>],
) {
    let plane = g.out_plane();
    for j in 0..count {
        for co in 0..g.c_out {
            let dst = &mut y[((n + j) * g.c_out + co) * plane..][..plane];
            dst.write_copy_of_slice(&product[co * ld + j * step..][..plane]);
        }
    }
}

/// The kernel rows of `weights` (each `[C_out, C_in, k, k]`) as `k` matrices
/// `[C_out, weights·C_in·k]` (row `co`: each weight's `[C_in, k]` at `ky`, in turn), the operands
/// of a product over [`Strips`] of as many inputs.
fn kernel_rows<T: Scalar>(g: &Geometry, weights: &[&[T]]) -> Vec<T> {
    let k = g.kernel;
    let cols = weights.len() * g.c_in * k;
    let mut rows = vec![T::default(); k * g.c_out * cols];
    for (i, weight) in weights.iter().enumerate() {
        for co in 0..g.c_out {
            for ci in 0..g.c_in {
                for ky in 0..k {
                    let from = &weight[((co * g.c_in + ci) * k + ky) * k..][..k];
                    let at = (ky * g.c_out + co) * cols + (i * g.c_in + ci) * k;
                    rows[at..][..k].copy_from_slice(from);
                }
            }
        }
    }
    rows
}

/// [`forward_sum`] of a [`Geometry::keeps_width`] convolution: `Σ_ky W[:, :, ky, :] · strips(ky)`,
/// with the terms' weights side by side and their inputs' strips one above the other.
fn forward_by_strips<T: Scalar>(
    g: &Geometry,
    terms: &[(Input<'_, T>, &[T])],
    y: &mut [MaybeUninit<T>],
) {
    let (k, plane) = (g.kernel, g.out_plane());
    let cols = terms.len() * g.c_in * k;
    let weights: Vec<&[T]> = terms.iter().map(|&(_, w)| w).collect();
    let inputs: Vec<Input<'_, T>> = terms.iter().map(|&(x, _)| x).collect();
    let rows = kernel_rows(g, &weights);
    let w = |ky: usize| {
        Mat::new(
            &rows[ky * g.c_out * cols..][..g.c_out * cols],
            g.c_out,
            cols,
        )
    };
    let mut strips = Strips::new(g, terms.len());
    let mut product = Vec::new();
    for (n, count) in groups(g) {
        let view = strips.fill(g, &inputs, (n, count));
        let width = view.width;
        if count == 1 {
            let out = &mut y[n * g.c_out * plane..][..g.c_out * plane];
            for ky in 0..k {
                matmul(out, plane, w(ky), view.row(ky), ky > 0);
            }
            continue;
        }
        product.resize(g.c_out * width, T::default());
        for ky in 0..k {
            matmul(out(&mut product), width, w(ky), view.row(ky), ky > 0);
        }
        scatter_planes(g, &product, width, g.strip_block(), (n, count), y);
    }
}

/// Input gradient: `dx = conv(·, weight)ᵀ dy`, masked by `mask` (the gradient reaching `x`
/// through a masked [`Input`]); writes all of `dx` (which may be uninitialised).
pub(crate) fn backward_input<T: Scalar>(
    g: &Geometry,
    weight: &[T],
    dy: &[T],
    mask: Option<&[T]>,
    dx: &mut [MaybeUninit<T>],
) {
    backward_input_sum(g, &[(weight, dy)], mask, dx);
}

/// `dx = Σ_i conv(·, weight_i)ᵀ dy_i` over `terms` `(weight_i, dy_i)` of one geometry, masked by
/// `mask`: for a size-keeping convolution, one product (as [`forward_sum`]).
pub(crate) fn backward_input_sum<T: Scalar>(
    g: &Geometry,
    terms: &[(&[T], &[T])],
    mask: Option<&[T]>,
    dx: &mut [MaybeUninit<T>],
) {
    let dx = if g.keeps_width() {
        backward_input_as_forward(g, terms, dx);
        // SAFETY: the forward convolution wrote all of `dx`.
        unsafe { dx.assume_init_mut() }
    } else {
        dx.fill(MaybeUninit::new(T::default()));
        // SAFETY: just filled.
        let dx = unsafe { dx.assume_init_mut() };
        backward_input_by_col2im(g, terms, dx);
        dx
    };
    if let Some(mask) = mask {
        apply_mask(mask, dx);
    }
}

/// [`backward_input_sum`] for any geometry, unmasked: `dx += Σ_i col2im(W_iᵀ · dy_i)`.
fn backward_input_by_col2im<T: Scalar>(g: &Geometry, terms: &[(&[T], &[T])], dx: &mut [T]) {
    let (rows, plane) = (g.col_rows(), g.out_plane());
    let image_len = g.c_in * g.in_plane();
    let mut col = col_buffer(g);
    let mut gathered = Vec::new();
    for (n, count) in groups(g) {
        for &(weight, dy) in terms {
            let wt = Mat::new(weight, g.c_out, rows).t();
            let grad = grad_of(g, dy, (n, count), &mut gathered);
            matmul(out(&mut col), g.col_ld(), wt, grad, false);
            for j in 0..count {
                let out = &mut dx[(n + j) * image_len..][..image_len];
                col2im(g, &col, out, j * plane);
            }
        }
    }
}

/// [`backward_input_sum`] of a [`Geometry::keeps_width`] convolution: input position `q`
/// received `W[co, ci, ky, kx]·dy[co, q - shift(ky, kx)]`, and `-shift(ky, kx)` is the shift of
/// the mirrored offset `(k-1-ky, k-1-kx)`, so `dx` is the forward convolution of `dy` by
/// `W'[ci, co, ky, kx] = W[co, ci, k-1-ky, k-1-kx]`. That reads `dy` through strips (copies into
/// a cache-sized buffer) instead of adding `col` back into `dx` through col2im.
fn backward_input_as_forward<T: Scalar>(
    g: &Geometry,
    terms: &[(&[T], &[T])],
    dx: &mut [MaybeUninit<T>],
) {
    let taps = g.kernel * g.kernel;
    let flipped: Vec<Vec<T>> = terms
        .iter()
        .map(|&(weight, _)| {
            let mut flipped = vec![T::default(); weight.len()];
            for co in 0..g.c_out {
                for ci in 0..g.c_in {
                    let from = &weight[(co * g.c_in + ci) * taps..][..taps];
                    let to = &mut flipped[(ci * g.c_out + co) * taps..][..taps];
                    for (t, v) in to.iter_mut().zip(from.iter().rev()) {
                        *t = *v;
                    }
                }
            }
            flipped
        })
        .collect();
    let swapped = Geometry {
        c_in: g.c_out,
        c_out: g.c_in,
        ..*g
    };
    let terms: Vec<(Input<'_, T>, &[T])> = terms
        .iter()
        .zip(&flipped)
        .map(|(&(_, dy), w)| (Input::plain(dy), &w[..]))
        .collect();
    forward_sum(&swapped, &terms, dx);
}

/// Weight gradient: `dw = Σ_n dy[n] · col(x[n])ᵀ`.
///
/// The product is written column by column (`dwᵀ`, then transposed): gemm then reads `col` where
/// it lies and copies only `dy` into its packed layout, a ninth of `col` for a 3x3 kernel with as
/// many input as output channels (as `[C_out, ·]` row by row, it would copy `col`).
pub(crate) fn backward_weight<T: Scalar>(g: &Geometry, x: Input<'_, T>, dy: &[T], dw: &mut [T]) {
    if g.keeps_width() {
        backward_weight_by_strips(g, x, dy, dw);
    } else {
        backward_weight_by_col(g, x, dy, dw);
    }
}

/// [`backward_weight`] for any geometry.
fn backward_weight_by_col<T: Scalar>(g: &Geometry, x: Input<'_, T>, dy: &[T], dw: &mut [T]) {
    let rows = g.col_rows();
    let (mut col, mut masked) = (col_buffer(g), Vec::new());
    let mut gathered = Vec::new();
    let mut transposed = vec![T::default(); rows * g.c_out];
    for (i, group) in groups(g).enumerate() {
        let grad = grad_of(g, dy, group, &mut gathered);
        let col = col_of(g, x, group, &mut col, &mut masked);
        matmul_strided(out(&mut transposed), (1, g.c_out), grad, col.t(), i > 0);
    }
    for (r, row) in transposed.chunks(g.c_out).enumerate() {
        for (co, &v) in row.iter().enumerate() {
            dw[co * rows + r] = v;
        }
    }
}

/// [`backward_weight`] of a [`Geometry::keeps_width`] convolution. Kernel row `ky`'s part is
/// `dy · strips(ky)ᵀ`, which is `dy` shifted `ky` image rows on times the whole strips: with the
/// `k` shifted copies of `dy` stacked, all kernel rows are one product with `k·C_out` rows
/// (gemm's tiles are 64 rows high: 16 output channels alone would fill a quarter of each).
fn backward_weight_by_strips<T: Scalar>(g: &Geometry, x: Input<'_, T>, dy: &[T], dw: &mut [T]) {
    let (k, plane, w) = (g.kernel, g.out_plane(), g.w);
    let cols = g.c_in * k;
    let image_len = g.c_out * plane;
    let mut strips = Strips::new(g, 1);
    let mut shifted = Vec::new();
    // `[C_in·k, k·C_out]`: row `(ci, kx)`, column `(ky, co)`.
    let mut transposed = vec![T::default(); cols * k * g.c_out];
    for (i, (n, count)) in groups(g).enumerate() {
        let span = g.strip_width(count) + (k - 1) * w;
        // Row `(ky, co)`: `dy[co]` of each image at its place in the product, `ky·w` on; zero
        // elsewhere.
        shifted.resize(k * g.c_out * span, T::default());
        for (r, row) in shifted.chunks_mut(span).take(k * g.c_out).enumerate() {
            let (ky, co) = (r / g.c_out, r % g.c_out);
            let mut at = ky * w;
            row[..at].fill(T::default());
            for j in 0..count {
                row[at..][..plane]
                    .copy_from_slice(&dy[(n + j) * image_len + co * plane..][..plane]);
                at += plane;
                let gap = if j + 1 < count {
                    g.strip_block() - plane
                } else {
                    span - at
                };
                row[at..][..gap].fill(T::default());
                at += gap;
            }
        }
        let grad = Mat::new(&shifted, k * g.c_out, span);
        let view = strips.fill(g, &[x], (n, count));
        let whole = Mat::strided(view.data, cols, span, view.ld);
        matmul_strided(
            out(&mut transposed),
            (1, k * g.c_out),
            grad,
            whole.t(),
            i > 0,
        );
    }
    for (r, row) in transposed.chunks(k * g.c_out).enumerate() {
        let (ci, kx) = (r / k, r % k);
        for (ky, part) in row.chunks(g.c_out).enumerate() {
            for (co, &v) in part.iter().enumerate() {
                dw[((co * g.c_in + ci) * k + ky) * k + kx] = v;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Direct definition of the convolution, for checking.
    fn naive(g: &Geometry, x: &[f64], w: &[f64]) -> Vec<f64> {
        let (ho, wo, k) = (g.h_out(), g.w_out(), g.kernel);
        let mut y = vec![0.0; g.batch * g.c_out * ho * wo];
        for n in 0..g.batch {
            for co in 0..g.c_out {
                for oy in 0..ho {
                    for ox in 0..wo {
                        let mut acc = 0.0;
                        for ci in 0..g.c_in {
                            for ky in 0..k {
                                for kx in 0..k {
                                    let iy = (oy * g.stride + ky) as isize - g.pad as isize;
                                    let ix = (ox * g.stride + kx) as isize - g.pad as isize;
                                    if iy < 0 || ix < 0 || iy >= g.h as isize || ix >= g.w as isize
                                    {
                                        continue;
                                    }
                                    let xi =
                                        ((n * g.c_in + ci) * g.h + iy as usize) * g.w + ix as usize;
                                    acc += x[xi] * w[((co * g.c_in + ci) * k + ky) * k + kx];
                                }
                            }
                        }
                        y[((n * g.c_out + co) * ho + oy) * wo + ox] = acc;
                    }
                }
            }
        }
        y
    }

    fn values(len: usize, seed: u64) -> Vec<f64> {
        (0..len)
            .map(|i| ((i as u64 * 2654435761 + seed * 97) % 1000) as f64 / 500.0 - 1.0)
            .collect()
    }

    /// `batch` square `h x h` images, 2 channels in and 3 out, padding `kernel / 2`.
    fn square(batch: usize, kernel: usize, stride: usize, h: usize) -> Geometry {
        Geometry {
            batch,
            c_in: 2,
            c_out: 3,
            h,
            w: h,
            kernel,
            stride,
            pad: kernel / 2,
        }
    }

    fn dot(a: &[f64], b: &[f64]) -> f64 {
        a.iter().zip(b).map(|(a, b)| a * b).sum()
    }

    /// The three kernels agree with the definition: the forward directly, the two gradients
    /// through the adjoint identities <dy, conv(x, w)> = <conv_xᵀ(dy), x> = <conv_wᵀ(dy), w>.
    #[test]
    fn kernels_match_the_definition_and_its_adjoints() {
        let shapes = [
            (3, 1, 1, 0, 6, 5),
            (3, 3, 1, 1, 7, 6),
            (3, 3, 2, 1, 8, 7),
            (3, 3, 2, 1, 7, 5),
            (1, 1, 2, 0, 6, 6),
            // Several images per product, kernels 3 and 5.
            (3, 3, 1, 1, 7, 8),
            (2, 5, 1, 2, 6, 9),
        ];
        for (c_in, kernel, stride, pad, h, w) in shapes {
            let g = Geometry {
                batch: 2,
                c_in,
                c_out: 4,
                h,
                w,
                kernel,
                stride,
                pad,
            };
            let (nx, nw, ny) = g.sizes();
            let (x, wt, dy) = (values(nx, 1), values(nw, 2), values(ny, 3));
            let mut y = vec![0.0; ny];
            forward(&g, Input::plain(&x), &wt, out(&mut y));
            let expected = naive(&g, &x, &wt);
            for (a, b) in y.iter().zip(&expected) {
                assert!((a - b).abs() < 1e-12, "{g:?}: forward {a} vs {b}");
            }
            let mut dx = vec![0.0; nx];
            backward_input(&g, &wt, &dy, None, out(&mut dx));
            let mut dw = vec![0.0; nw];
            backward_weight(&g, Input::plain(&x), &dy, &mut dw);
            let reference = dot(&dy, &y);
            assert!(
                (dot(&dx, &x) - reference).abs() < 1e-9,
                "{g:?}: input gradient"
            );
            assert!(
                (dot(&dw, &wt) - reference).abs() < 1e-9,
                "{g:?}: weight gradient"
            );
        }
    }

    /// The products over strips of size-keeping convolutions equal the im2col ones (forward and
    /// weight gradient, masked or not), maps smaller than the kernel and groups of several
    /// images included.
    #[test]
    fn strip_products_equal_the_im2col_ones() {
        for (c_in, kernel, h, w) in [
            (2, 3, 5, 4),
            (1, 3, 1, 1),
            (3, 3, 2, 7),
            (2, 5, 6, 6),
            (2, 5, 1, 2),
            (2, 1, 3, 3),
            (3, 3, 16, 16),
            (2, 3, 8, 8),
        ] {
            let g = Geometry {
                batch: 5,
                c_in,
                c_out: 3,
                h,
                w,
                kernel,
                stride: 1,
                pad: kernel / 2,
            };
            assert!(g.keeps_width());
            let (nx, nw, ny) = g.sizes();
            let (x, wt, dy) = (values(nx, 12), values(nw, 13), values(ny, 14));
            for input in [
                Input::plain(&x),
                Input {
                    x: &x,
                    mask: Some(&x),
                },
            ] {
                let (mut a, mut b) = (vec![0.0; ny], vec![0.0; ny]);
                forward_by_strips(&g, &[(input, &wt)], out(&mut a));
                forward_by_col(&g, &[(input, &wt)], out(&mut b));
                for (a, b) in a.iter().zip(&b) {
                    assert!((a - b).abs() < 1e-12, "{g:?}: forward {a} vs {b}");
                }
                let (mut a, mut b) = (vec![0.0; nw], vec![0.0; nw]);
                backward_weight_by_strips(&g, input, &dy, &mut a);
                backward_weight_by_col(&g, input, &dy, &mut b);
                for (a, b) in a.iter().zip(&b) {
                    assert!((a - b).abs() < 1e-12, "{g:?}: weight gradient {a} vs {b}");
                }
            }
        }
    }

    /// A sum of two convolutions (forward, and input gradient) equals the sum of each, for
    /// size-keeping and strided geometries, masked or not.
    #[test]
    fn sums_of_convolutions_equal_the_sums_of_each() {
        for (kernel, stride, h) in [(3, 1, 8), (3, 1, 16), (1, 1, 5), (3, 2, 8), (1, 2, 6)] {
            let g = square(5, kernel, stride, h);
            let (nx, nw, ny) = g.sizes();
            let (x1, x2, mask) = (values(nx, 15), values(nx, 16), values(nx, 17));
            let (w1, w2) = (values(nw, 18), values(nw, 19));
            let (dy1, dy2) = (values(ny, 20), values(ny, 21));
            for mask in [None, Some(&mask[..])] {
                let (a, b) = (Input { x: &x1, mask }, Input { x: &x2, mask });
                let (mut sum, mut one, mut two) = (vec![0.0; ny], vec![0.0; ny], vec![0.0; ny]);
                forward_sum(&g, &[(a, &w1), (b, &w2)], out(&mut sum));
                forward(&g, a, &w1, out(&mut one));
                forward(&g, b, &w2, out(&mut two));
                for (s, (o, t)) in sum.iter().zip(one.iter().zip(&two)) {
                    assert!(
                        (s - (o + t)).abs() < 1e-12,
                        "{g:?}: forward {s} vs {}",
                        o + t
                    );
                }
                let (mut sum, mut one, mut two) = (vec![0.0; nx], vec![0.0; nx], vec![0.0; nx]);
                backward_input_sum(&g, &[(&w1, &dy1), (&w2, &dy2)], mask, out(&mut sum));
                backward_input(&g, &w1, &dy1, mask, out(&mut one));
                backward_input(&g, &w2, &dy2, mask, out(&mut two));
                for (s, (o, t)) in sum.iter().zip(one.iter().zip(&two)) {
                    assert!(
                        (s - (o + t)).abs() < 1e-12,
                        "{g:?}: input gradient {s} vs {}",
                        o + t
                    );
                }
            }
        }
    }

    /// A masked input gives bit for bit what the masked values stored first give: the forward
    /// and the weight gradient read `relu(x)`, the input gradient is zeroed where `x <= 0`.
    #[test]
    fn masked_input_equals_the_stored_mask() {
        for (kernel, stride, h) in [(3, 1, 8), (3, 2, 8), (1, 1, 5), (1, 2, 6)] {
            let g = square(3, kernel, stride, h);
            let (nx, nw, ny) = g.sizes();
            let (x, wt, dy) = (values(nx, 9), values(nw, 10), values(ny, 11));
            let relu: Vec<f64> = x.iter().map(|&v| if v <= 0.0 { 0.0 } else { v }).collect();
            let masked = Input {
                x: &x,
                mask: Some(&x),
            };
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            let (mut a, mut b) = (vec![0.0; ny], vec![0.0; ny]);
            forward(&g, masked, &wt, out(&mut a));
            forward(&g, Input::plain(&relu), &wt, out(&mut b));
            assert_eq!(bits(&a), bits(&b), "{g:?}: forward");
            let (mut a, mut b) = (vec![0.0; nw], vec![0.0; nw]);
            backward_weight(&g, masked, &dy, &mut a);
            backward_weight(&g, Input::plain(&relu), &dy, &mut b);
            assert_eq!(bits(&a), bits(&b), "{g:?}: weight gradient");
            let (mut a, mut b) = (vec![0.0; nx], vec![0.0; nx]);
            backward_input(&g, &wt, &dy, Some(&x), out(&mut a));
            backward_input(&g, &wt, &dy, None, out(&mut b));
            for (v, &m) in b.iter_mut().zip(&x) {
                if m <= 0.0 {
                    *v = 0.0;
                }
            }
            assert_eq!(bits(&a), bits(&b), "{g:?}: input gradient");
        }
    }

    /// In float32, every output of the three kernels is within float32 rounding of the float64
    /// result, on NB201's shapes at reduced settings too (maps down to 1x1, 4 channels).
    #[test]
    fn float32_kernels_round_like_float32() {
        let shapes = [
            (4, 4, 3, 1, 8),
            (4, 8, 3, 2, 4),
            (8, 8, 3, 1, 2),
            (8, 16, 3, 2, 2),
            (16, 16, 1, 1, 1),
            (16, 16, 3, 1, 32),
            (64, 64, 3, 1, 8),
        ];
        for (c_in, c_out, kernel, stride, h) in shapes {
            let g = Geometry {
                batch: 3,
                c_in,
                c_out,
                h,
                w: h,
                kernel,
                stride,
                pad: kernel / 2,
            };
            let (nx, nw, ny) = g.sizes();
            let (x, wt, dy) = (values(nx, 4), values(nw, 5), values(ny, 6));
            let single = |v: &[f64]| v.iter().map(|&v| v as f32).collect::<Vec<f32>>();
            let (x32, w32, dy32) = (single(&x), single(&wt), single(&dy));
            let check = |what: &str, ours: &[f32], exact: &[f64], terms: usize| {
                // Each output sums `terms` products of values below 1 in magnitude.
                let bound = 4.0 * terms as f64 * f32::EPSILON as f64;
                for (i, (a, b)) in ours.iter().zip(exact).enumerate() {
                    assert!(
                        (*a as f64 - b).abs() <= bound,
                        "{g:?} {what}[{i}]: {a} vs {b}"
                    );
                }
            };
            let (mut y, mut y32) = (vec![0.0; ny], vec![0.0f32; ny]);
            forward(&g, Input::plain(&x), &wt, out(&mut y));
            forward(&g, Input::plain(&x32), &w32, out(&mut y32));
            check("forward", &y32, &y, g.col_rows());
            let (mut dx, mut dx32) = (vec![0.0; nx], vec![0.0f32; nx]);
            backward_input(&g, &wt, &dy, None, out(&mut dx));
            backward_input(&g, &w32, &dy32, None, out(&mut dx32));
            check("input gradient", &dx32, &dx, g.c_out * kernel * kernel);
            let (mut dw, mut dw32) = (vec![0.0; nw], vec![0.0f32; nw]);
            backward_weight(&g, Input::plain(&x), &dy, &mut dw);
            backward_weight(&g, Input::plain(&x32), &dy32, &mut dw32);
            check("weight gradient", &dw32, &dw, g.batch * g.out_plane());
        }
    }
}
