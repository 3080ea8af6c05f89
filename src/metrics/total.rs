//! Counters whose count is kept by their source (the event stream's connects, the DC/OS
//! logins, both in `marathon/`, which knows nothing of metrics): brought up to the source's
//! total whenever it is read.

use std::sync::atomic::{AtomicU64, Ordering};

use prometheus::IntCounter;

/// A counter that follows a total counted elsewhere.
#[derive(Debug)]
pub struct TotalCounter {
    counter: IntCounter,
    /// The highest total seen: the counter's value without the race of reading it back (two
    /// scrapes at once would each add the same difference).
    seen: AtomicU64,
}

impl TotalCounter {
    pub(super) fn new(counter: IntCounter) -> TotalCounter {
        TotalCounter {
            counter,
            seen: AtomicU64::new(0),
        }
    }

    /// Raises the counter to `total`, the source's count since start (a lower total, read
    /// before a higher one was, changes nothing).
    pub fn observe(&self, total: u64) {
        let before = self.seen.fetch_max(total, Ordering::Relaxed);
        if total > before {
            self.counter.inc_by(total - before);
        }
    }

    pub fn get(&self) -> u64 {
        self.counter.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_the_highest_total_seen() {
        let counter = TotalCounter::new(IntCounter::new("x_total", "x").unwrap());
        counter.observe(2);
        counter.observe(5);
        counter.observe(3);
        counter.observe(5);
        assert_eq!(counter.get(), 5);
    }
}
