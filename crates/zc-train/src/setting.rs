//! Reduced-training settings (`rRcC`) and the training recipe.

use std::fmt;
use std::str::FromStr;

use zc_space::Cell;

use crate::TrainError;

/// A reduced-training setting: input resolution R and initial channels C, named `rRcC`
/// (EcoNAS). The real NB201 network is `r32c16`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Setting {
    /// Side of the (resized) input images.
    pub resolution: usize,
    /// Initial channels (stages C, 2C, 4C).
    pub channels: usize,
}

impl Setting {
    /// The real network's setting (r32c16), the baseline of FLOPs ratios.
    pub const BASELINE: Setting = Setting {
        resolution: 32,
        channels: 16,
    };

    /// FLOPs of one forward pass of one image through the network of `cell` at this setting.
    pub fn flops_per_image(self, cell: Cell, num_classes: usize) -> u64 {
        cell.flops_with_channels(num_classes, self.resolution, self.channels)
    }
}

impl fmt::Display for Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "r{}c{}", self.resolution, self.channels)
    }
}

impl FromStr for Setting {
    type Err = TrainError;

    fn from_str(s: &str) -> Result<Self, TrainError> {
        let bad = || TrainError::BadSetting(s.to_owned());
        let rest = s.strip_prefix('r').ok_or_else(bad)?;
        let (r, c) = rest.split_once('c').ok_or_else(bad)?;
        let number = |t: &str| {
            (!t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
                .then(|| t.parse::<usize>().ok())
                .flatten()
                .ok_or_else(bad)
        };
        let (resolution, channels) = (number(r)?, number(c)?);
        // Below 8 the last stage's maps are 1x1 and a BatchNorm over one image is undefined;
        // leading zeros would name one setting twice.
        let canonical = !r.starts_with('0') && !c.starts_with('0');
        if !canonical || resolution < 8 || resolution % 4 != 0 || resolution > 32 || channels == 0 {
            return Err(bad());
        }
        Ok(Setting {
            resolution,
            channels,
        })
    }
}

/// The training recipe of the authors' `nasbench2_train.py`: SGD with Nesterov momentum and
/// weight decay, a cosine schedule to 0 over the epochs (stepped once per epoch), cross-entropy.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Recipe {
    /// Epochs (the cosine schedule's period).
    pub epochs: usize,
    /// Training images per step (the last batch of an epoch may be smaller).
    pub batch_size: usize,
    /// Initial learning rate.
    pub learning_rate: f64,
    /// Momentum.
    pub momentum: f64,
    /// L2 weight decay, applied to every parameter.
    pub weight_decay: f64,
}

impl Recipe {
    /// The authors' recipe with `epochs` and `batch_size` (theirs: 40 and 2048).
    pub fn paper(epochs: usize, batch_size: usize) -> Result<Self, TrainError> {
        if epochs == 0 {
            return Err(TrainError::BadRecipe("epochs must be at least 1".into()));
        }
        if batch_size == 0 {
            return Err(TrainError::BadRecipe(
                "batch_size must be at least 1".into(),
            ));
        }
        Ok(Recipe {
            epochs,
            batch_size,
            learning_rate: 0.1,
            momentum: 0.9,
            weight_decay: 5e-4,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_parse_and_print() {
        let s: Setting = "r8c4".parse().unwrap();
        assert_eq!((s.resolution, s.channels), (8, 4));
        assert_eq!(s.to_string(), "r8c4");
        for bad in [
            "8c4", "r8", "r6c4", "r4c4", "r08c4", "r8c0", "r8c4x", "r+8c4", "r64c4", "",
        ] {
            assert!(bad.parse::<Setting>().is_err(), "{bad}");
        }
    }

    #[test]
    fn flops_ratios_are_the_papers() {
        // The paper: FLOPs per epoch vs the baseline 1/230 (r8c4), 1/59.5 (r8c8, r16c4),
        // 1/15.4 (r16c8); the ratio depends a little on the cell.
        let cell: Cell = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"
            .parse()
            .unwrap();
        let base = Setting::BASELINE.flops_per_image(cell, 10) as f64;
        let ratio = |s: &str| base / s.parse::<Setting>().unwrap().flops_per_image(cell, 10) as f64;
        assert!((200.0..260.0).contains(&ratio("r8c4")), "{}", ratio("r8c4"));
        assert!((55.0..64.0).contains(&ratio("r8c8")), "{}", ratio("r8c8"));
        assert!((55.0..64.0).contains(&ratio("r16c4")), "{}", ratio("r16c4"));
        assert!((14.0..16.5).contains(&ratio("r16c8")), "{}", ratio("r16c8"));
    }
}
