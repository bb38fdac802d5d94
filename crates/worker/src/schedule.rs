//! Scheduled work: a job enqueued once per period under a unique key naming the period, so of
//! several instances on one database exactly one enqueue succeeds and the period's work runs
//! once. A period nobody was running for is skipped, not caught up: scheduled jobs sweep
//! whatever is due, so the next period's run covers it.

use std::time::Duration;

use bursar_store::jobs::NewJob;
use chrono::{Datelike, Days, TimeZone};
use chrono_tz::Tz;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cadence {
    /// Periods of this length, counted from the Unix epoch.
    Every(Duration),
    /// One period per local day, starting at midnight in this time zone.
    DailyAtMidnight(Tz),
}

#[derive(Debug, Clone)]
pub struct Schedule {
    pub kind: &'static str,
    pub cadence: Cadence,
    pub max_attempts: i64,
}

impl Schedule {
    pub fn every(kind: &'static str, period: Duration) -> Self {
        Self {
            kind,
            cadence: Cadence::Every(period.max(Duration::from_secs(1))),
            max_attempts: 3,
        }
    }

    pub fn daily_at_midnight(kind: &'static str, zone: Tz) -> Self {
        Self {
            kind,
            cadence: Cadence::DailyAtMidnight(zone),
            max_attempts: 3,
        }
    }

    /// The period `now_ms` falls in: its name and when it began.
    pub fn period(&self, now_ms: i64) -> (String, i64) {
        match self.cadence {
            Cadence::Every(period) => {
                let period_ms = (period.as_millis() as i64).max(1);
                let start = now_ms.div_euclid(period_ms) * period_ms;
                (bursar_store::clock::rfc3339(start), start)
            }
            Cadence::DailyAtMidnight(zone) => {
                let day = local_date(zone, now_ms);
                (day.to_string(), local_midnight_ms(zone, day))
            }
        }
    }

    /// The job for the period `now_ms` falls in. Its payload names the period.
    pub fn job_for(&self, now_ms: i64) -> NewJob {
        let (period, start_ms) = self.period(now_ms);
        NewJob::new(
            self.kind,
            &serde_json::json!({ "period": period }),
            self.max_attempts,
        )
        .unique(format!("{}@{period}", self.kind))
        .at(start_ms)
    }
}

/// Where "today" and "this month" begin and end in a time zone: what daily and monthly limits
/// count within.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalCalendar {
    /// The local date itself.
    pub day: chrono::NaiveDate,
    pub day_start_ms: i64,
    pub next_day_ms: i64,
    pub month_start_ms: i64,
    pub next_month_ms: i64,
}

impl LocalCalendar {
    pub fn at(zone: Tz, now_ms: i64) -> Self {
        let today = local_date(zone, now_ms);
        let month = today.with_day(1).unwrap_or(today);
        let next = |day: chrono::NaiveDate, days: Days| day.checked_add_days(days).unwrap_or(day);
        let next_month = month
            .checked_add_months(chrono::Months::new(1))
            .unwrap_or(month);
        Self {
            day: today,
            day_start_ms: local_midnight_ms(zone, today),
            next_day_ms: local_midnight_ms(zone, next(today, Days::new(1))),
            month_start_ms: local_midnight_ms(zone, month),
            next_month_ms: local_midnight_ms(zone, next_month),
        }
    }
}

/// The date `now_ms` falls on in `zone`.
fn local_date(zone: Tz, now_ms: i64) -> chrono::NaiveDate {
    chrono::DateTime::from_timestamp_millis(now_ms)
        .unwrap_or_default()
        .with_timezone(&zone)
        .date_naive()
}

/// The first instant of `day` in `zone`. Where midnight is skipped by a daylight-saving change,
/// the day begins at the first local time that exists.
fn local_midnight_ms(zone: Tz, day: chrono::NaiveDate) -> i64 {
    let mut time = day.and_hms_opt(0, 0, 0).unwrap_or_default();
    for _ in 0..24 {
        if let Some(start) = zone.from_local_datetime(&time).earliest() {
            return start.timestamp_millis();
        }
        time += chrono::Duration::hours(1);
    }
    // No zone skips a whole day; fall back to the next day's start in UTC.
    day.checked_add_days(Days::new(1))
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map_or(0, |t| t.and_utc().timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_local_calendar_begins_at_local_midnights() {
        let at = |text: &str| {
            chrono::DateTime::parse_from_rfc3339(text)
                .expect("valid")
                .timestamp_millis()
        };
        let calendar = LocalCalendar::at(chrono_tz::Asia::Shanghai, at("2026-12-31T17:00:00Z"));
        assert_eq!(calendar.day_start_ms, at("2026-12-31T16:00:00Z"));
        assert_eq!(calendar.next_day_ms, at("2027-01-01T16:00:00Z"));
        assert_eq!(calendar.month_start_ms, at("2026-12-31T16:00:00Z"));
        assert_eq!(calendar.next_month_ms, at("2027-01-31T16:00:00Z"));
    }

    const DAY_MS: i64 = 86_400_000;

    #[test]
    fn periods_of_five_minutes_are_named_by_their_start() {
        let schedule = Schedule::every("sweep", Duration::from_secs(300));
        let half_past = chrono::DateTime::parse_from_rfc3339("2026-12-02T10:30:00Z")
            .expect("valid")
            .timestamp_millis();
        let (name, start) = schedule.period(half_past + 123_456);
        assert_eq!(start, half_past);
        assert_eq!(name, "2026-12-02T10:30:00.000Z");
        assert_eq!(schedule.period(start + 299_999).1, start);
        assert_eq!(schedule.period(start + 300_000).1, start + 300_000);
        let job = schedule.job_for(start + 5);
        assert_eq!(
            job.unique_key.as_deref(),
            Some("sweep@2026-12-02T10:30:00.000Z")
        );
        assert_eq!(job.run_at_ms, Some(start));
    }

    #[test]
    fn a_local_day_begins_at_midnight_in_its_time_zone() {
        let schedule = Schedule::daily_at_midnight("allowance", chrono_tz::Asia::Shanghai);
        // 2026-12-01T16:30Z is 00:30 on 2 December in Shanghai (UTC+8).
        let now = chrono::DateTime::parse_from_rfc3339("2026-12-01T16:30:00Z")
            .expect("valid")
            .timestamp_millis();
        let (name, start) = schedule.period(now);
        assert_eq!(name, "2026-12-02");
        assert_eq!(start, now - 30 * 60 * 1000);
        // 15:59Z the next day is still 2 December there.
        assert_eq!(schedule.period(start + DAY_MS - 1).0, "2026-12-02");
        assert_eq!(schedule.period(start + DAY_MS).0, "2026-12-03");
    }

    #[test]
    fn a_day_whose_midnight_is_skipped_begins_at_the_first_local_time() {
        // Santiago moved its clocks from 00:00 to 01:00 on 2024-09-08.
        let zone = chrono_tz::America::Santiago;
        let day = chrono::NaiveDate::from_ymd_opt(2024, 9, 8).expect("valid");
        let start = local_midnight_ms(zone, day);
        let local = chrono::DateTime::from_timestamp_millis(start)
            .expect("valid")
            .with_timezone(&zone);
        assert_eq!(
            local.format("%Y-%m-%d %H:%M").to_string(),
            "2024-09-08 01:00"
        );
    }
}
