//! Samples and how figures are printed.

/// Sorted samples in nanoseconds.
pub struct Samples(pub Vec<u64>);

impl Samples {
    pub fn new(mut v: Vec<u64>) -> Self {
        v.sort_unstable();
        Samples(v)
    }

    pub fn pct(&self, p: f64) -> f64 {
        if self.0.is_empty() {
            return f64::NAN;
        }
        let rank = ((p / 100.0) * (self.0.len() - 1) as f64).round() as usize;
        self.0[rank.min(self.0.len() - 1)] as f64
    }

    pub fn us(&self, p: f64) -> f64 {
        self.pct(p) / 1000.0
    }

    pub fn ms(&self, p: f64) -> f64 {
        self.pct(p) / 1e6
    }
}

pub fn line(name: &str, figure: impl std::fmt::Display) {
    println!("{name}: {figure}");
}
