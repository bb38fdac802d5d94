//! The daily gift's schedule: what the n-th consecutive day's gift is worth.

use crate::MAX_CREDITS;

/// The most days a schedule may list (a year of distinct days is plenty).
pub const SCHEDULE_DAYS_MAX: usize = 366;

/// A non-empty list of positive credit amounts, one per streak day, repeating after the last.
/// Only `parse` makes one, so every schedule in the program is valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GiftSchedule(Vec<i64>);

impl GiftSchedule {
    /// Reads `10,10,20,…`: 1 to `SCHEDULE_DAYS_MAX` whole numbers, each at least 1.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut days = Vec::new();
        for part in text.split(',') {
            let part = part.trim();
            let credits: i64 = part
                .parse()
                .map_err(|_| format!("{part:?} is not a whole number of credits"))?;
            if !(1..=MAX_CREDITS).contains(&credits) {
                return Err(format!("{credits} is not between 1 and {MAX_CREDITS}"));
            }
            days.push(credits);
        }
        if days.len() > SCHEDULE_DAYS_MAX {
            return Err(format!("more than {SCHEDULE_DAYS_MAX} days"));
        }
        Ok(Self(days))
    }

    /// The gift for streak day `day` (1 is the first day of a streak), wrapping after the last.
    pub fn credits_for(&self, day: i64) -> i64 {
        let index = (day.max(1) - 1) as usize % self.0.len();
        self.0[index]
    }
}

impl Default for GiftSchedule {
    fn default() -> Self {
        Self(vec![10, 10, 20, 20, 30, 30, 100])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_repeats_after_its_last_day() {
        let schedule = GiftSchedule::parse("1, 2,3").expect("valid");
        let gifts: Vec<i64> = (1..=7).map(|day| schedule.credits_for(day)).collect();
        assert_eq!(gifts, [1, 2, 3, 1, 2, 3, 1]);
        assert_eq!(GiftSchedule::default().credits_for(7), 100);
        assert_eq!(GiftSchedule::default().credits_for(8), 10);
    }

    #[test]
    fn bad_schedules_are_refused() {
        for bad in ["", "10,,20", "10,0", "-5", "ten", "9007199254740992"] {
            assert!(GiftSchedule::parse(bad).is_err(), "{bad:?}");
        }
        assert!(GiftSchedule::parse(&vec!["1"; 367].join(",")).is_err());
    }
}
