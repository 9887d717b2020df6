//! Good/total counts over time in constant memory: a ring of minutes for
//! the short windows (up to 6 h, exact to the minute) and a ring of hours
//! for the long ones (1 d, 3 d, the SLO window). A long window counts whole
//! hours: the current one and the ones before it, so its far edge moves by
//! the hour. That is what keeps a 30-day SLO at about 60 KB however many
//! probes it sees, and a window's sums free of rescanning raw probes.

/// Windows up to this many minutes are summed minute by minute.
pub const MINUTE_RESOLUTION_UP_TO: i64 = 360;

/// Counts for one SLO.
#[derive(Debug, Clone)]
pub struct MinuteSeries {
    minutes: Ring,
    hours: Ring,
}

impl MinuteSeries {
    /// Enough for windows up to `longest_minutes`.
    pub fn new(longest_minutes: i64) -> Self {
        let hours = hours_in(longest_minutes.max(1)) + 1;
        Self { minutes: Ring::new(MINUTE_RESOLUTION_UP_TO as usize), hours: Ring::new(hours as usize) }
    }

    /// Adds counts to a minute (and its hour).
    pub fn add(&mut self, minute: i64, good: u64, total: u64) {
        self.minutes.add(minute, good, total);
        self.hours.add(minute.div_euclid(60), good, total);
    }

    /// Good and total over the `window` minutes ending with `now_minute`
    /// (the current, partial minute included); over 6 h, in whole hours.
    pub fn sums(&self, now_minute: i64, window: i64) -> (u64, u64) {
        if window <= MINUTE_RESOLUTION_UP_TO {
            self.minutes.sums(now_minute, window)
        } else {
            self.hours.sums(now_minute.div_euclid(60), hours_in(window))
        }
    }
}

/// Whole hours needed to cover `minutes` (> 0).
fn hours_in(minutes: i64) -> i64 {
    (minutes + 59).div_euclid(60)
}

/// A fixed ring of buckets keyed by an increasing index (minute or hour).
#[derive(Debug, Clone)]
struct Ring {
    slots: Vec<Slot>,
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    key: i64,
    good: u64,
    total: u64,
}

const EMPTY: i64 = i64::MIN;

impl Ring {
    fn new(capacity: usize) -> Self {
        Self { slots: vec![Slot { key: EMPTY, good: 0, total: 0 }; capacity.max(1)] }
    }

    /// A key older than the ring holds is dropped, never allowed to
    /// overwrite newer data.
    fn add(&mut self, key: i64, good: u64, total: u64) {
        let len = self.slots.len() as i64;
        let slot = &mut self.slots[key.rem_euclid(len) as usize];
        if slot.key != EMPTY && slot.key > key {
            return;
        }
        if slot.key != key {
            *slot = Slot { key, good: 0, total: 0 };
        }
        slot.good += good;
        slot.total += total;
    }

    fn sums(&self, now: i64, window: i64) -> (u64, u64) {
        let from = now - window.min(self.slots.len() as i64) + 1;
        self.slots
            .iter()
            .filter(|s| s.key != EMPTY && s.key >= from && s.key <= now)
            .fold((0, 0), |(g, t), s| (g + s.good, t + s.total))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_window_sums_exactly_its_minutes() {
        let mut s = MinuteSeries::new(43_200);
        for m in 100..=110 {
            s.add(m, 9, 10);
        }
        s.add(110, 0, 1);
        assert_eq!(s.sums(110, 1), (9, 11), "the current minute alone");
        assert_eq!(s.sums(110, 5), (45, 51), "minutes 106..=110");
        assert_eq!(s.sums(110, 360), (99, 111), "everything");
        assert_eq!(s.sums(120, 5), (0, 0), "a window after the data is empty");
    }

    #[test]
    fn a_long_window_counts_whole_hours_ending_with_the_current_one() {
        let mut s = MinuteSeries::new(43_200);
        let now = 1_000 * 60 + 30; // half past hour 1000
        s.add(now, 1, 1);
        s.add(now - 60 * 23, 1, 1); // hour 977: inside a 1d window (hours 977..=1000)
        s.add(now - 60 * 24, 0, 1); // hour 976: outside
        assert_eq!(s.sums(now, 1_440), (2, 2));
        assert_eq!(s.sums(now, 4_320), (2, 3));
        s.add(now - 60 * 24 * 29, 0, 5);
        assert_eq!(s.sums(now, 43_200), (2, 8), "30 days back is still held");
    }

    #[test]
    fn old_data_falls_out_and_never_overwrites_newer_data() {
        let mut s = MinuteSeries::new(120);
        s.add(5, 1, 1);
        s.add(5 + 360, 2, 2); // same minute slot as minute 5: replaces it
        assert_eq!(s.sums(365, 360), (2, 2));
        s.add(5, 7, 7); // a late, too-old minute is ignored in the minute ring
        assert_eq!(s.sums(365, 360), (2, 2));
        assert_eq!(s.sums(365, 100_000).1, 2, "a window longer than the rings is capped");
    }

    #[test]
    fn memory_does_not_grow_with_the_window_s_probes() {
        let s = MinuteSeries::new(43_200);
        assert_eq!(s.minutes.slots.len() + s.hours.slots.len(), 360 + 721);
    }
}
