use jiff::civil::{Time, Weekday};
use jiff::tz::TimeZone;

use super::*;
use crate::config::Environment::{Dev, Prod, StagingShared};

const WEEKDAYS: [Weekday; 5] =
    [Weekday::Monday, Weekday::Tuesday, Weekday::Wednesday, Weekday::Thursday, Weekday::Friday];
const EVERY_DAY: [Weekday; 7] = [
    Weekday::Monday,
    Weekday::Tuesday,
    Weekday::Wednesday,
    Weekday::Thursday,
    Weekday::Friday,
    Weekday::Saturday,
    Weekday::Sunday,
];

fn window(name: &str, envs: &[Environment], tz: &str, days: &[Weekday], start: &str, end: &str) -> DeployWindow {
    DeployWindow {
        name: name.into(),
        environments: envs.to_vec(),
        timezone: TimeZone::get(tz).unwrap(),
        days: days.to_vec(),
        start: Time::strptime("%H:%M", start).unwrap(),
        end: Time::strptime("%H:%M", end).unwrap(),
    }
}

/// The shared staging slot of SPEC: 12:00–15:00 Europe/Paris, Monday to Friday.
fn staging_slot() -> DeployWindow {
    window("staging-shared-slot", &[StagingShared], "Europe/Paris", &WEEKDAYS, "12:00", "15:00")
}

fn at(text: &str) -> Timestamp {
    text.parse().unwrap()
}

#[test]
fn the_paris_slot_follows_local_time_on_both_sides_of_each_dst_change() {
    let slot = staging_slot();
    // (row, instant in UTC, open?) — the local time is in the row name.
    let rows = [
        ("Fri 27 Mar (UTC+1) 11:59:59", "2026-03-27T10:59:59Z", false),
        ("Fri 27 Mar (UTC+1) 12:00:00", "2026-03-27T11:00:00Z", true),
        ("Fri 27 Mar (UTC+1) 14:59:59", "2026-03-27T13:59:59Z", true),
        ("Fri 27 Mar (UTC+1) 15:00:00", "2026-03-27T14:00:00Z", false),
        ("Mon 30 Mar (UTC+2) 11:59:59", "2026-03-30T09:59:59Z", false),
        ("Mon 30 Mar (UTC+2) 12:00:00", "2026-03-30T10:00:00Z", true),
        ("Mon 30 Mar (UTC+2) 14:59:59", "2026-03-30T12:59:59Z", true),
        ("Mon 30 Mar (UTC+2) 15:00:00", "2026-03-30T13:00:00Z", false),
        ("Mon 30 Mar (UTC+2) 15:30, which winter time would call 14:30", "2026-03-30T13:30:00Z", false),
        ("Fri 23 Oct (UTC+2) 11:59:59", "2026-10-23T09:59:59Z", false),
        ("Fri 23 Oct (UTC+2) 12:00:00", "2026-10-23T10:00:00Z", true),
        ("Fri 23 Oct (UTC+2) 14:59:59", "2026-10-23T12:59:59Z", true),
        ("Fri 23 Oct (UTC+2) 15:00:00", "2026-10-23T13:00:00Z", false),
        ("Mon 26 Oct (UTC+1) 11:59:59", "2026-10-26T10:59:59Z", false),
        ("Mon 26 Oct (UTC+1) 12:00:00", "2026-10-26T11:00:00Z", true),
        ("Mon 26 Oct (UTC+1) 14:59:59", "2026-10-26T13:59:59Z", true),
        ("Mon 26 Oct (UTC+1) 15:00:00", "2026-10-26T14:00:00Z", false),
        ("Mon 26 Oct (UTC+1) 11:30, which summer time would call 12:30", "2026-10-26T10:30:00Z", false),
        ("Sat 28 Mar 12:30, a weekend", "2026-03-28T11:30:00Z", false),
        ("Sun 25 Oct 12:30, a weekend and the DST day", "2026-10-25T11:30:00Z", false),
    ];
    for (row, instant, open) in rows {
        assert_eq!(is_open(&slot, at(instant)), open, "{row}");
    }
}

#[test]
fn the_next_opening_skips_the_weekend_and_crosses_dst() {
    let slot = staging_slot();
    let rows = [
        ("Fri 15:00 before spring → Mon 12:00 CEST", "2026-03-27T14:00:00Z", "2026-03-30T10:00:00Z"),
        ("Sat before spring → Mon 12:00 CEST", "2026-03-28T11:30:00Z", "2026-03-30T10:00:00Z"),
        ("Fri 15:00 before autumn → Mon 12:00 CET", "2026-10-23T13:00:00Z", "2026-10-26T11:00:00Z"),
        ("Mon 11:59:59 → a second later", "2026-10-26T10:59:59Z", "2026-10-26T11:00:00Z"),
        ("Wed 15:00 → Thu 12:00", "2025-11-26T14:00:00Z", "2025-11-27T11:00:00Z"),
    ];
    for (row, now, next) in rows {
        assert_eq!(next_opening(&slot, at(now)), Some(at(next)), "{row}");
    }
}

#[test]
fn the_next_opening_reads_as_a_person_would_say_it() {
    let slot = staging_slot();
    let now = at("2025-11-25T14:02:00Z"); // Tue 15:02 in Paris
    let WindowState::Closed { windows, next: Some(next) } =
        open_window(std::slice::from_ref(&slot), StagingShared, now)
    else {
        panic!("the slot should be closed with a next opening");
    };
    assert_eq!(windows.len(), 1);
    assert_eq!(describe_opening(&next, now), "Wed 26 Nov 12:00 Europe/Paris (in 20h58m)");
    assert_eq!(local_time(&slot, now), "Tue 25 Nov 15:02");
    assert_eq!(describe_window(&slot), "staging-shared-slot (Mon–Fri 12:00–15:00 Europe/Paris)");
}

#[test]
fn a_window_inside_the_skipped_spring_hour_stays_shut_that_day() {
    let night = window("night", &[Dev], "Europe/Paris", &EVERY_DAY, "02:00", "03:00");
    for (row, instant) in [
        ("01:30 CET", "2026-03-29T00:30:00Z"),
        ("01:59:59 CET", "2026-03-29T00:59:59Z"),
        ("03:00 CEST, right after the jump", "2026-03-29T01:00:00Z"),
    ] {
        assert!(!is_open(&night, at(instant)), "{row}");
    }
    assert!(is_open(&night, at("2026-03-28T01:00:00Z")), "the day before, 02:00 CET");
    assert_eq!(next_opening(&night, at("2026-03-28T23:00:00Z")), Some(at("2026-03-30T00:00:00Z")));
}

#[test]
fn a_window_starting_in_the_skipped_hour_opens_when_the_clock_jumps_into_it() {
    let late = window("late", &[Dev], "Europe/Paris", &EVERY_DAY, "02:30", "04:00");
    assert!(!is_open(&late, at("2026-03-29T00:59:59Z")), "01:59:59 CET");
    assert!(is_open(&late, at("2026-03-29T01:00:00Z")), "03:00 CEST");
    assert!(!is_open(&late, at("2026-03-29T02:00:00Z")), "04:00 CEST");
    assert_eq!(next_opening(&late, at("2026-03-29T00:00:00Z")), Some(at("2026-03-29T01:00:00Z")));
}

#[test]
fn a_window_over_the_repeated_autumn_hour_is_open_for_both_passes() {
    let night = window("night", &[Dev], "Europe/Paris", &EVERY_DAY, "02:00", "03:00");
    let rows = [
        ("01:59:59 CEST", "2026-10-24T23:59:59Z", false),
        ("02:00 CEST, first pass", "2026-10-25T00:00:00Z", true),
        ("02:59:59 CEST", "2026-10-25T00:59:59Z", true),
        ("02:00 CET, second pass", "2026-10-25T01:00:00Z", true),
        ("02:59:59 CET", "2026-10-25T01:59:59Z", true),
        ("03:00 CET", "2026-10-25T02:00:00Z", false),
    ];
    for (row, instant, open) in rows {
        assert_eq!(is_open(&night, at(instant)), open, "{row}");
    }
    assert_eq!(next_opening(&night, at("2026-10-24T23:30:00Z")), Some(at("2026-10-25T00:00:00Z")));
}

#[test]
fn a_window_ending_in_the_repeated_hour_opens_again_when_the_clock_turns_back() {
    let early = window("early", &[Dev], "Europe/Paris", &EVERY_DAY, "01:00", "02:30");
    assert!(is_open(&early, at("2026-10-25T00:15:00Z")), "02:15 CEST");
    assert!(!is_open(&early, at("2026-10-25T00:45:00Z")), "02:45 CEST");
    assert!(is_open(&early, at("2026-10-25T01:00:00Z")), "02:00 CET");
    assert_eq!(next_opening(&early, at("2026-10-25T00:45:00Z")), Some(at("2026-10-25T01:00:00Z")));
}

#[test]
fn an_environment_without_windows_is_always_open() {
    let windows = [staging_slot()];
    assert!(matches!(open_window(&windows, Prod, at("2026-03-28T03:00:00Z")), WindowState::Unrestricted));
    assert!(matches!(open_window(&[], StagingShared, at("2026-03-28T03:00:00Z")), WindowState::Unrestricted));
}

#[test]
fn several_windows_open_the_environment_when_any_is_open() {
    let windows = [
        window("paris-morning", &[Prod], "Europe/Paris", &WEEKDAYS, "09:00", "10:00"),
        window("new-york-evening", &[Prod, Dev], "America/New_York", &WEEKDAYS, "17:00", "18:00"),
        staging_slot(),
    ];
    let name = |s: WindowState<'_>| match s {
        WindowState::Open(w) => format!("open {}", w.name),
        WindowState::Closed { windows, next } => {
            let names: Vec<_> = windows.iter().map(|w| w.name.as_str()).collect();
            format!("closed {names:?} next {:?}", next.map(|n| (n.window.name.clone(), n.at.to_string())))
        }
        WindowState::Unrestricted => "unrestricted".into(),
    };
    let rows = [
        ("Paris 09:30", "2026-11-25T08:30:00Z", "open paris-morning"),
        ("New York 17:30 (EST)", "2026-11-25T22:30:00Z", "open new-york-evening"),
        (
            "Paris 12:30: the staging slot is not prod's",
            "2026-11-25T11:30:00Z",
            r#"closed ["paris-morning", "new-york-evening"] next Some(("new-york-evening", "2026-11-25T22:00:00Z"))"#,
        ),
        (
            "after New York closes on Friday",
            "2026-11-27T23:00:00Z",
            r#"closed ["paris-morning", "new-york-evening"] next Some(("paris-morning", "2026-11-30T08:00:00Z"))"#,
        ),
    ];
    for (row, now, expected) in rows {
        assert_eq!(name(open_window(&windows, Prod, at(now))), expected, "{row}");
    }
}

#[test]
fn a_window_without_days_never_opens() {
    let never = window("never", &[Dev], "Europe/Paris", &[], "12:00", "15:00");
    assert!(!is_open(&never, at("2026-11-25T11:30:00Z")));
    assert_eq!(next_opening(&never, at("2026-11-25T11:30:00Z")), None);
    assert_eq!(describe_window(&never), "never (no day 12:00–15:00 Europe/Paris)");
}

#[test]
fn days_are_written_as_ranges_or_lists() {
    use Weekday::*;
    assert_eq!(days_text(&WEEKDAYS), "Mon–Fri");
    assert_eq!(days_text(&EVERY_DAY), "every day");
    assert_eq!(days_text(&[Sunday, Saturday]), "Sat, Sun");
    assert_eq!(days_text(&[Monday, Wednesday, Friday]), "Mon, Wed, Fri");
}

#[test]
fn a_window_starting_in_the_repeated_hour_opens_at_each_pass_of_its_start() {
    let late = window("late", &[Dev], "Europe/Paris", &EVERY_DAY, "02:30", "04:00");
    assert!(is_open(&late, at("2026-10-25T00:45:00Z")), "02:45 CEST");
    assert!(!is_open(&late, at("2026-10-25T01:10:00Z")), "02:10 CET: the clock went back before the start");
    assert_eq!(next_opening(&late, at("2026-10-24T23:00:00Z")), Some(at("2026-10-25T00:30:00Z")), "02:30 CEST");
    assert_eq!(next_opening(&late, at("2026-10-25T01:10:00Z")), Some(at("2026-10-25T01:30:00Z")), "02:30 CET");
}
