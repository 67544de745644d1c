//! Repeated timings: median, spread, and the noise flag.

use std::time::Duration;

/// A result is flagged as noisy when (max - min) / median exceeds this.
pub(crate) const NOISY_SPREAD: f64 = 0.20;

/// The timings of the measured repetitions of one case (warm-up runs excluded).
#[derive(Debug, Clone, Default)]
pub(crate) struct Timings {
    pub(crate) runs: Vec<Duration>,
    /// The case hit its time limit; `runs` then holds what finished (possibly nothing).
    pub(crate) timed_out: Option<Duration>,
}

impl Timings {
    pub(crate) fn push(&mut self, d: Duration) {
        self.runs.push(d);
    }

    pub(crate) fn median(&self) -> Option<Duration> {
        if self.runs.is_empty() {
            return None;
        }
        let mut v = self.runs.clone();
        v.sort();
        let n = v.len();
        Some(if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2
        })
    }

    /// (max - min) / median, 0 for fewer than two runs.
    pub(crate) fn spread(&self) -> f64 {
        let (Some(min), Some(max), Some(med)) = (
            self.runs.iter().min(),
            self.runs.iter().max(),
            self.median(),
        ) else {
            return 0.0;
        };
        if med.is_zero() {
            return 0.0;
        }
        (*max - *min).as_secs_f64() / med.as_secs_f64()
    }

    pub(crate) fn noisy(&self) -> bool {
        self.runs.len() > 1 && self.spread() > NOISY_SPREAD
    }

    /// The median as text, with the repetition count and flags.
    pub(crate) fn describe(&self) -> String {
        match (self.median(), self.timed_out) {
            (_, Some(limit)) if self.runs.is_empty() => {
                format!("> {} (timeout)", fmt_duration(limit))
            }
            (Some(m), _) => {
                let mut s = fmt_duration(m);
                if self.runs.len() == 1 {
                    s += " (1 run)";
                } else if self.noisy() {
                    s += &format!(" (noisy: spread {:.0}%)", self.spread() * 100.0);
                }
                s
            }
            (None, _) => "not run".to_string(),
        }
    }
}

pub(crate) fn fmt_duration(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s >= 10.0 {
        format!("{s:.1} s")
    } else if s >= 1.0 {
        format!("{s:.2} s")
    } else if s >= 1e-3 {
        format!("{:.2} ms", s * 1e3)
    } else {
        format!("{:.1} µs", s * 1e6)
    }
}

pub(crate) fn fmt_bytes(b: u64) -> String {
    let b = b as f64;
    if b >= 1024.0 * 1024.0 * 1024.0 {
        format!("{:.2} GiB", b / (1024.0 * 1024.0 * 1024.0))
    } else if b >= 1024.0 * 1024.0 {
        format!("{:.1} MiB", b / (1024.0 * 1024.0))
    } else if b >= 1024.0 {
        format!("{:.1} KiB", b / 1024.0)
    } else {
        format!("{b:.0} B")
    }
}

pub(crate) fn fmt_rate(per_s: f64) -> String {
    if per_s >= 1e6 {
        format!("{:.2} M/s", per_s / 1e6)
    } else if per_s >= 1e3 {
        format!("{:.1} k/s", per_s / 1e3)
    } else {
        format!("{per_s:.0} /s")
    }
}

/// A speed-up factor: two decimals below 10 (where "1×" would hide a 1.5), whole above.
pub(crate) fn fmt_factor(r: f64) -> String {
    if r < 10.0 {
        format!("{r:.2}×")
    } else {
        format!("{r:.0}×")
    }
}
