//! How a search uses the proxy: `baseline`, `warmup(N)`, `move`, `move(k)`, or a `+` of them.

use std::fmt;
use std::str::FromStr;

use zc_space::Cell;

use crate::SearchError;

/// How the proxy proposes the next cell to train.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MoveProposal {
    /// `move`: among the 24 one-edit neighbours of the parent, the best by proxy (aging
    /// evolution's mutation).
    Neighbours,
    /// `move(k)`: sample k cells and train only the best by proxy (REINFORCE).
    Sample(usize),
}

/// A search variant: the baseline algorithm, or it helped by the proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Variant {
    /// `warmup(N)`: N proxy evaluations before training: N random cells (all of them for
    /// N = 15,625) whose best seed the algorithm; for RL, N policy samples rewarded by the proxy.
    pub warmup: Option<usize>,
    /// `move` / `move(k)`: the proxy chooses among proposals.
    pub proposal: Option<MoveProposal>,
}

impl Variant {
    /// The algorithm alone.
    pub const BASELINE: Variant = Variant {
        warmup: None,
        proposal: None,
    };
}

impl fmt::Display for Variant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(n) = self.warmup {
            parts.push(format!("warmup({n})"));
        }
        match self.proposal {
            Some(MoveProposal::Neighbours) => parts.push("move".into()),
            Some(MoveProposal::Sample(k)) => parts.push(format!("move({k})")),
            None => {}
        }
        if parts.is_empty() {
            f.write_str("baseline")
        } else {
            f.write_str(&parts.join("+"))
        }
    }
}

impl FromStr for Variant {
    type Err = SearchError;

    fn from_str(text: &str) -> Result<Self, SearchError> {
        let bad = |why: String| SearchError::BadVariant {
            text: text.to_string(),
            why,
        };
        let trimmed = text.trim();
        if trimmed == "baseline" {
            return Ok(Variant::BASELINE);
        }
        let mut variant = Variant::BASELINE;
        for part in trimmed.split('+').map(str::trim) {
            let (name, arg) = match part.split_once('(') {
                Some((name, rest)) => {
                    let (arg, tail) = rest
                        .split_once(')')
                        .ok_or_else(|| bad(format!("{part:?} lacks its closing ')'")))?;
                    if !tail.is_empty() {
                        return Err(bad(format!("unexpected {tail:?} after {part:?}'s ')'")));
                    }
                    let n: usize = arg.trim().parse().map_err(|_| {
                        bad(format!("{arg:?} in {part:?} is not a positive integer"))
                    })?;
                    if n == 0 {
                        return Err(bad(format!("{part:?} needs a count of at least 1")));
                    }
                    (name.trim(), Some(n))
                }
                None => (part, None),
            };
            match (name, arg) {
                ("warmup", Some(n)) if variant.warmup.is_none() => {
                    if n > Cell::COUNT {
                        return Err(bad(format!(
                            "warmup({n}) exceeds the {} cells of the space",
                            Cell::COUNT
                        )));
                    }
                    variant.warmup = Some(n);
                }
                ("warmup", None) => return Err(bad("warmup needs a count: warmup(N)".into())),
                ("move", k) if variant.proposal.is_none() => {
                    variant.proposal =
                        Some(k.map_or(MoveProposal::Neighbours, MoveProposal::Sample));
                }
                ("warmup" | "move", _) => return Err(bad(format!("{name} is given twice"))),
                ("baseline", None) => {
                    return Err(bad("baseline cannot be combined with warmup or move".into()));
                }
                _ => {
                    return Err(bad(format!(
                        "unknown part {part:?} (expected baseline, warmup(N), move or move(k), joined by +)"
                    )));
                }
            }
        }
        Ok(variant)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_round_trip() {
        for text in [
            "baseline",
            "warmup(3000)",
            "move",
            "move(100)",
            "warmup(15625)+move",
        ] {
            let v: Variant = text.parse().unwrap();
            assert_eq!(v.to_string(), text);
        }
        let v: Variant = "warmup(64) + move(10)".parse().unwrap();
        assert_eq!(v.warmup, Some(64));
        assert_eq!(v.proposal, Some(MoveProposal::Sample(10)));
    }

    #[test]
    fn rejects_malformed_variants_with_the_reason() {
        for (text, why) in [
            ("warmup", "needs a count"),
            ("warmup(x)", "not a positive integer"),
            ("warmup(0)", "at least 1"),
            ("warmup(20000)", "exceeds"),
            ("move(3", "closing"),
            ("warmup(5)+warmup(6)", "twice"),
            ("mutate", "unknown part"),
            ("warmup(3)x", "unexpected \"x\""),
            ("baseline+move", "cannot be combined"),
        ] {
            let err = text.parse::<Variant>().unwrap_err().to_string();
            assert!(err.contains(why), "{text}: {err}");
        }
    }
}
