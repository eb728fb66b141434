//! Misbehaviour of the upload side for tests and the adversarial lab (docs/lab.md).
//! The daemon flags that set it exist only in builds with the `test-faults` feature;
//! in other builds [`Faults::default`] (behave) is the only value, and every check
//! below is compiled out by `cfg!`.

use dht_proto::Bitfield;

/// How the upload side misbehaves.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Faults {
    /// Fraction of served chunks corrupted (0 = none, 1 = all).
    pub corrupt_rate: f64,
    /// Refuse every chunk request (`Choked`), while downloading normally.
    pub freeload: bool,
    /// Advertise every chunk of every file held, even partly.
    pub lie_have: bool,
}

impl Faults {
    /// Whether to refuse this chunk request.
    pub(super) fn refuse_chunk(&self) -> bool {
        cfg!(feature = "test-faults") && self.freeload
    }

    /// Corrupts a served chunk, with probability `corrupt_rate`.
    pub(super) fn maybe_corrupt(&self, data: &mut [u8]) {
        if !cfg!(feature = "test-faults") || self.corrupt_rate <= 0.0 {
            return;
        }
        if rand::random::<f64>() < self.corrupt_rate {
            if let Some(b) = data.first_mut() {
                *b ^= 0xff;
            }
        }
    }

    /// The bitfield to advertise instead of `have`, if lying.
    pub(super) fn advertised(&self, have: Bitfield) -> Bitfield {
        if cfg!(feature = "test-faults") && self.lie_have {
            Bitfield::full(have.len())
        } else {
            have
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_do_what_they_say() {
        let honest = Faults::default();
        let mut data = vec![1u8; 8];
        honest.maybe_corrupt(&mut data);
        assert_eq!(data, vec![1u8; 8]);
        assert!(!honest.refuse_chunk());
        let have = Bitfield::new(10);
        assert_eq!(honest.advertised(have.clone()).count(), 0);
        // The package's tests build with the feature on.
        let bad = Faults {
            corrupt_rate: 1.0,
            freeload: true,
            lie_have: true,
        };
        bad.maybe_corrupt(&mut data);
        assert_ne!(data, vec![1u8; 8]);
        assert!(bad.refuse_chunk());
        assert_eq!(bad.advertised(have).count(), 10);
    }
}
