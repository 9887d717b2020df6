//! Deploy windows: may an environment deploy now, and if not, when next.
//!
//! Rule: an environment that no window names may deploy at any time. One
//! that windows name may deploy while any of them is open. A window is open
//! while the wall clock *in its own time zone* shows one of its days and a
//! time from `start` (included) to `end` (excluded): 15:00:00 is outside a
//! 12:00–15:00 window, 14:59:59.999 inside. Why wall time: the slot is a
//! human agreement ("12:00–15:00 Paris time"), so it follows the clocks of
//! the people who share it, through daylight saving changes — 12:00
//! Europe/Paris is 10:00Z in summer and 11:00Z in winter.
//!
//! Edge cases, all from the same wall-clock rule:
//! - A local time the clocks skip (02:00–03:00 on the last Sunday of March
//!   in Paris) never occurs, so a 02:00–03:00 window stays shut that day, and
//!   a 01:30–03:30 window is open for one real hour (01:30–02:00 and
//!   03:00–03:30 local).
//! - A local time the clocks repeat (02:00–03:00 on the last Sunday of
//!   October) occurs twice, so a 02:00–03:00 window is open for both passes,
//!   two real hours (00:00Z–02:00Z); a 01:00–02:30 window closes at 02:30
//!   summer time and opens again at 02:00 winter time; a 02:30–04:00 window
//!   shuts when the clock turns back to 02:00 and opens again at 02:30.
//! - `end` not after `start` is rejected by the config; such a window would
//!   never be open. A window with no days never opens.
//! - The next opening is searched over the coming 8 local days, among the
//!   instants the clock reads `start` and the time zone's transitions (where
//!   the clock can jump into a window); `None` when none opens in that time.

#[cfg(test)]
mod tests;

use jiff::civil::{Date, Weekday};
use jiff::tz::AmbiguousOffset;
use jiff::{SignedDuration, Timestamp};

use super::wording;
use crate::config::{DeployWindow, Environment};

/// Local days searched for the next opening: a week, plus the day the
/// search starts on (the window may open later today or a week from today).
const SEARCH_DAYS: usize = 8;

/// Where an environment stands against its deploy windows.
#[derive(Debug, Clone)]
pub enum WindowState<'a> {
    /// No window names this environment: it may deploy at any time.
    Unrestricted,
    /// This window (the first open one, in config order) is open now.
    Open(&'a DeployWindow),
    /// Every window of the environment is closed; `next` is the soonest
    /// opening among them, if one opens within the search horizon.
    Closed { windows: Vec<&'a DeployWindow>, next: Option<Opening<'a>> },
}

/// When a window next opens.
#[derive(Debug, Clone)]
pub struct Opening<'a> {
    pub window: &'a DeployWindow,
    pub at: Timestamp,
}

/// Where `env` stands at `now` against the windows that name it.
pub fn open_window<'a>(windows: &'a [DeployWindow], env: Environment, now: Timestamp) -> WindowState<'a> {
    let mine: Vec<&DeployWindow> = windows.iter().filter(|w| w.environments.contains(&env)).collect();
    if mine.is_empty() {
        return WindowState::Unrestricted;
    }
    if let Some(open) = mine.iter().find(|w| is_open(w, now)) {
        return WindowState::Open(open);
    }
    let next =
        mine.iter().filter_map(|w| next_opening(w, now).map(|at| Opening { window: w, at })).min_by_key(|o| o.at);
    WindowState::Closed { windows: mine, next }
}

/// Whether the wall clock in the window's zone shows one of its days and a
/// time in `[start, end)`.
pub fn is_open(window: &DeployWindow, now: Timestamp) -> bool {
    let local = window.timezone.to_datetime(now);
    let time = local.time();
    window.days.contains(&local.weekday()) && window.start <= time && time < window.end
}

/// The first instant after `now` at which the window opens, within the
/// coming [`SEARCH_DAYS`] local days.
pub fn next_opening(window: &DeployWindow, now: Timestamp) -> Option<Timestamp> {
    let horizon = now.checked_add(SignedDuration::from_hours(24 * (SEARCH_DAYS as i64 + 1))).ok()?;
    let today = window.timezone.to_datetime(now).date();
    let days = std::iter::successors(Some(today), |d| d.tomorrow().ok()).take(SEARCH_DAYS + 1);
    let starts = days.filter(|d| window.days.contains(&d.weekday())).flat_map(|d| start_instants(window, d));
    let jumps = window.timezone.following(now).map(|t| t.timestamp()).take_while(|t| *t <= horizon);
    starts.chain(jumps).filter(|t| *t > now && *t <= horizon && is_open(window, *t)).min()
}

/// The instants at which the clock reads `start` on `date`: one on most
/// days, two when the time is repeated, none when it is skipped (the
/// transition out of the gap is then a candidate of its own).
fn start_instants(window: &DeployWindow, date: Date) -> Vec<Timestamp> {
    let local = date.to_datetime(window.start);
    let offsets = match window.timezone.to_ambiguous_timestamp(local).offset() {
        AmbiguousOffset::Unambiguous { offset } => vec![offset],
        AmbiguousOffset::Gap { .. } => vec![],
        AmbiguousOffset::Fold { before, after } => vec![before, after],
    };
    offsets.into_iter().filter_map(|o| o.to_timestamp(local).ok()).collect()
}

/// `staging-shared-slot (Mon–Fri 12:00–15:00 Europe/Paris)`.
pub fn describe_window(window: &DeployWindow) -> String {
    format!(
        "{} ({} {}–{} {})",
        window.name,
        days_text(&window.days),
        window.start.strftime("%H:%M"),
        window.end.strftime("%H:%M"),
        zone_name(window)
    )
}

/// `Wed 26 Nov 12:00 Europe/Paris (in 20h58m)`.
pub fn describe_opening(opening: &Opening<'_>, now: Timestamp) -> String {
    format!(
        "{} {} (in {})",
        local_time(opening.window, opening.at),
        zone_name(opening.window),
        wording::wait(opening.at.duration_since(now))
    )
}

/// The wall clock of the window's zone at `now`: `Tue 25 Nov 15:02`.
pub fn local_time(window: &DeployWindow, now: Timestamp) -> String {
    window.timezone.to_datetime(now).strftime("%a %-d %b %H:%M").to_string()
}

/// The zone's IANA name, or its offset for a zone without one.
pub fn zone_name(window: &DeployWindow) -> String {
    match window.timezone.iana_name() {
        Some(name) => name.to_string(),
        None => window.timezone.to_offset(Timestamp::UNIX_EPOCH).to_string(),
    }
}

/// `Mon–Fri`, `every day`, `Sat, Sun`, `Mon, Wed, Fri`.
fn days_text(days: &[Weekday]) -> String {
    const NAMES: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    let mut idx: Vec<usize> = days.iter().map(|d| usize::from(d.to_monday_zero_offset().unsigned_abs())).collect();
    idx.sort_unstable();
    idx.dedup();
    let consecutive = idx.windows(2).all(|w| w[1] == w[0] + 1);
    match idx.as_slice() {
        [] => "no day".into(),
        all if all.len() == 7 => "every day".into(),
        [first, .., last] if consecutive && idx.len() >= 3 => format!("{}–{}", NAMES[*first], NAMES[*last]),
        some => some.iter().map(|i| NAMES[*i]).collect::<Vec<_>>().join(", "),
    }
}
