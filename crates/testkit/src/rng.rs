//! A tiny deterministic generator for tests that pick "random" moments or sizes but must
//! do the same on every run.

/// xorshift64: the same sequence for the same seed, on every machine.
#[derive(Clone, Debug)]
pub struct Xorshift(pub u64);

impl Xorshift {
    /// The next value, below `n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}
