//! A fixed ring of per-minute good/total counts: constant memory whatever
//! the window, and a window's sums without rescanning raw probes.

/// Counts for the last `capacity` minutes.
#[derive(Debug, Clone)]
pub struct MinuteSeries {
    slots: Vec<Slot>,
}

#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    minute: i64,
    good: u64,
    total: u64,
}

impl MinuteSeries {
    pub fn new(capacity_minutes: usize) -> Self {
        Self { slots: vec![Slot { minute: i64::MIN, good: 0, total: 0 }; capacity_minutes.max(1)] }
    }

    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    fn slot(&mut self, minute: i64) -> &mut Slot {
        let len = self.slots.len() as i64;
        let slot = &mut self.slots[minute.rem_euclid(len) as usize];
        if slot.minute != minute {
            *slot = Slot { minute, good: 0, total: 0 };
        }
        slot
    }

    /// Adds counts to a minute. A minute older than the ring holds is
    /// dropped, never allowed to overwrite newer data.
    pub fn add(&mut self, minute: i64, good: u64, total: u64) {
        let len = self.slots.len() as i64;
        let held = self.slots[minute.rem_euclid(len) as usize].minute;
        if held != i64::MIN && held > minute {
            return;
        }
        let slot = self.slot(minute);
        slot.good += good;
        slot.total += total;
    }

    /// Good and total over the `window` minutes ending with `now_minute`
    /// (the current, partial minute included).
    pub fn sums(&self, now_minute: i64, window: i64) -> (u64, u64) {
        let from = now_minute - window.min(self.slots.len() as i64) + 1;
        self.slots
            .iter()
            .filter(|s| s.minute >= from && s.minute <= now_minute)
            .fold((0, 0), |(g, t), s| (g + s.good, t + s.total))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_sums_exactly_its_minutes() {
        let mut s = MinuteSeries::new(60);
        for m in 100..=110 {
            s.add(m, 9, 10);
        }
        s.add(110, 0, 1);
        assert_eq!(s.sums(110, 1), (9, 11), "the current minute alone");
        assert_eq!(s.sums(110, 5), (45, 51), "minutes 106..=110");
        assert_eq!(s.sums(110, 60), (99, 111), "everything held");
        assert_eq!(s.sums(120, 5), (0, 0), "a window after the data is empty");
    }

    #[test]
    fn old_minutes_fall_out_of_the_ring_and_never_overwrite_newer_ones() {
        let mut s = MinuteSeries::new(10);
        s.add(5, 1, 1);
        s.add(15, 2, 2); // same slot as minute 5: replaces it
        assert_eq!(s.sums(15, 10), (2, 2));
        s.add(5, 7, 7); // a late, too-old minute is ignored
        assert_eq!(s.sums(15, 10), (2, 2));
        assert_eq!(s.sums(15, 1_000), (2, 2), "a window longer than the ring is capped");
    }
}
