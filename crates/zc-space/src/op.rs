//! The five candidate operations of an NB201 edge.

use std::fmt;
use std::str::FromStr;

use crate::error::SpaceError;

/// An operation on one edge of a cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Op {
    /// `none`: the edge multiplies its input by zero (it is absent).
    None,
    /// `skip_connect`: identity.
    SkipConnect,
    /// `nor_conv_1x1`: ReLU -> Conv 1x1 (with bias) -> BatchNorm without affine parameters.
    NorConv1x1,
    /// `nor_conv_3x3`: ReLU -> Conv 3x3 (with bias) -> BatchNorm without affine parameters.
    NorConv3x3,
    /// `avg_pool_3x3`: average pooling 3x3, stride 1, padding 1 (padding not counted).
    AvgPool3x3,
}

impl Op {
    /// All ops in their canonical order; [`Op::index`] is the position in this array.
    pub const ALL: [Op; 5] = [
        Op::None,
        Op::SkipConnect,
        Op::NorConv1x1,
        Op::NorConv3x3,
        Op::AvgPool3x3,
    ];

    /// The NB201 name of the op, as written in architecture strings.
    pub fn name(self) -> &'static str {
        match self {
            Op::None => "none",
            Op::SkipConnect => "skip_connect",
            Op::NorConv1x1 => "nor_conv_1x1",
            Op::NorConv3x3 => "nor_conv_3x3",
            Op::AvgPool3x3 => "avg_pool_3x3",
        }
    }

    /// The position of the op in [`Op::ALL`] (0..5).
    pub fn index(self) -> usize {
        self as usize
    }

    /// Whether the op is a convolution (`nor_conv_1x1` or `nor_conv_3x3`).
    pub fn is_conv(self) -> bool {
        self.kernel_size().is_some()
    }

    /// The kernel size of a convolution op (`Some(1)` or `Some(3)`); `None` for the
    /// parameter-free ops, including `avg_pool_3x3`.
    pub fn kernel_size(self) -> Option<usize> {
        match self {
            Op::NorConv1x1 => Some(1),
            Op::NorConv3x3 => Some(3),
            Op::None | Op::SkipConnect | Op::AvgPool3x3 => None,
        }
    }

    /// The valid op names, comma-separated, for error messages.
    pub(crate) fn valid_names() -> String {
        Op::ALL.map(Op::name).join(", ")
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Op {
    type Err = SpaceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Op::ALL
            .into_iter()
            .find(|op| op.name() == s)
            .ok_or_else(|| SpaceError::UnknownOp { name: s.to_owned() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_index_matches_all() {
        for (i, op) in Op::ALL.into_iter().enumerate() {
            assert_eq!(op.index(), i);
            assert_eq!(op.name().parse::<Op>(), Ok(op));
            assert_eq!(op.to_string(), op.name());
        }
        assert_eq!(
            Op::ALL.iter().filter(|op| op.is_conv()).count(),
            2,
            "exactly the two nor_conv ops are convolutions"
        );
    }

    #[test]
    fn unknown_op_lists_valid_names() {
        let err = "conv_5x5".parse::<Op>().unwrap_err().to_string();
        assert_eq!(
            err,
            "unknown op \"conv_5x5\"; valid ops: none, skip_connect, nor_conv_1x1, \
             nor_conv_3x3, avg_pool_3x3"
        );
        assert!("None".parse::<Op>().is_err(), "names are case-sensitive");
    }
}
