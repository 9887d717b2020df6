//! A wall clock that a test can jump: the system's time plus an offset, as
//! when NTP steps the clock or a VM resumes. Monotonic time (tokio's) is
//! untouched, as it is on a real machine.

use std::sync::atomic::{AtomicI64, Ordering};

use guardian::clock::{Clock, SystemClock};
use jiff::{SignedDuration, Timestamp};

#[derive(Debug, Default)]
pub struct JumpClock {
    offset_ms: AtomicI64,
}

impl JumpClock {
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves wall time by `by` (negative: back) from now on.
    pub fn jump(&self, by: SignedDuration) {
        self.offset_ms.fetch_add(by.as_millis() as i64, Ordering::SeqCst);
    }

    /// Sets wall time to `to` from now on (it then runs at the system's pace).
    pub fn jump_to(&self, to: Timestamp) {
        let by = to.duration_since(self.now());
        self.jump(by);
    }

    pub fn offset(&self) -> SignedDuration {
        SignedDuration::from_millis(self.offset_ms.load(Ordering::SeqCst))
    }
}

impl Clock for JumpClock {
    fn now(&self) -> Timestamp {
        let real = SystemClock.now();
        real.checked_add(self.offset()).unwrap_or(real)
    }
}
