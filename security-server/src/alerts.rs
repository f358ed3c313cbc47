//! The alerts a running server raises on its dashboard and in `GET
//! /api/v1/status` (so `musubi status` and monitoring see them too): each has
//! a stable code, a level, an English text and the values a translated text
//! is made from. Worked out from plain facts, so the thresholds are tested
//! without a network.

use serde::Serialize;
use serde_json::{Map, Value, json};

/// A certificate this close to its end is a warning (days).
pub const CERTIFICATE_WARN_DAYS: i64 = 30;
/// A global configuration this close to its expiry is a warning (seconds;
/// X-Road's default validity is 600 s, refreshed every 60 s).
pub const GLOBALCONF_WARN_SECS: i64 = 300;
/// This many log records waiting for a time stamp is a warning (batches are
/// far smaller while the TSA answers).
pub const BACKLOG_WARN: u64 = 1000;

/// How bad an alert is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// Traffic stops, or will, unless someone acts.
    Error,
    /// Something to see to before it becomes an error.
    Warning,
}

/// One alert.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alert {
    /// How bad it is.
    pub level: Level,
    /// Stable code (the UI's texts are keyed by it).
    pub code: &'static str,
    /// What is wrong, in English.
    pub text: String,
    /// The values the text names.
    pub values: Map<String, Value>,
}

fn alert(level: Level, code: &'static str, text: String, values: Value) -> Alert {
    let values = match values {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    Alert { level, code, text, values }
}

/// What the alerts are worked out from.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// Unix seconds now.
    pub now: i64,
    /// Why the global configuration is not valid, if it is not.
    pub globalconf_problem: Option<String>,
    /// When the global configuration expires (Unix seconds).
    pub globalconf_expires_at: Option<i64>,
    /// Whether the global configuration lists this server's authentication certificate.
    pub registered: bool,
    /// The central server's maintenance message for this server.
    pub maintenance: Option<String>,
    /// Each own certificate: its subject, end of validity (Unix seconds) and
    /// the OCSP problem, if any.
    pub certificates: Vec<(String, i64, Option<String>)>,
    /// Why time-stamping fails, if it does.
    pub timestamping_problem: Option<String>,
    /// Log records waiting for a time stamp.
    pub backlog: u64,
}

/// The alerts `facts` call for, errors first.
pub fn alerts(f: &Facts) -> Vec<Alert> {
    use Level::{Error, Warning};
    let mut out = Vec::new();
    if let Some(problem) = &f.globalconf_problem {
        out.push(alert(
            Error,
            "globalconf_invalid",
            format!("the global configuration is not valid: {problem}; exchanges are refused"),
            json!({ "problem": problem }),
        ));
    } else if let Some(left) = f.globalconf_expires_at.map(|at| at - f.now).filter(|l| *l < GLOBALCONF_WARN_SECS) {
        out.push(alert(
            Warning,
            "globalconf_expiring",
            format!("the global configuration expires in {left} s: can the server reach the central server?"),
            json!({ "seconds": left }),
        ));
    }
    if !f.registered {
        out.push(alert(
            Warning,
            "not_registered",
            "the global configuration does not list this server's authentication certificate: register it".into(),
            json!({}),
        ));
    }
    if let Some(message) = &f.maintenance {
        out.push(alert(
            Warning,
            "maintenance",
            format!("the central server has put this server in maintenance mode: {message}"),
            json!({ "message": message }),
        ));
    }
    for (subject, not_after, ocsp) in &f.certificates {
        let days = (not_after - f.now).div_euclid(86_400);
        if *not_after <= f.now {
            out.push(alert(
                Error,
                "certificate_expired",
                format!("certificate {subject} has expired"),
                json!({ "certificate": subject }),
            ));
        } else if days < CERTIFICATE_WARN_DAYS {
            out.push(alert(
                Warning,
                "certificate_expiring",
                format!("certificate {subject} expires in {days} days: renew it"),
                json!({ "certificate": subject, "days": days }),
            ));
        }
        if let Some(problem) = ocsp {
            out.push(alert(
                Error,
                "ocsp_problem",
                format!("certificate {subject}: {problem}"),
                json!({ "certificate": subject, "problem": problem }),
            ));
        }
    }
    if let Some(problem) = &f.timestamping_problem {
        out.push(alert(
            Error,
            "timestamping_failing",
            format!("time-stamping fails: {problem}"),
            json!({ "problem": problem }),
        ));
    } else if f.backlog >= BACKLOG_WARN {
        out.push(alert(
            Warning,
            "timestamping_backlog",
            format!("{} message-log records wait for a time stamp", f.backlog),
            json!({ "records": f.backlog }),
        ));
    }
    out.sort_by_key(|a| a.level != Error);
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const DAY: i64 = 86_400;

    fn healthy() -> Facts {
        Facts {
            now: 1_000_000_000,
            globalconf_expires_at: Some(1_000_000_000 + 540),
            registered: true,
            certificates: vec![("C=DEMO, O=GOV, CN=1001".into(), 1_000_000_000 + 365 * DAY, None)],
            backlog: 3,
            ..Facts::default()
        }
    }

    fn codes(f: &Facts) -> Vec<&'static str> {
        alerts(f).iter().map(|a| a.code).collect()
    }

    #[test]
    fn a_healthy_server_raises_nothing() {
        assert!(alerts(&healthy()).is_empty());
    }

    #[test]
    fn each_threshold_raises_its_alert_and_errors_come_first() {
        let mut f = healthy();
        f.globalconf_expires_at = Some(f.now + GLOBALCONF_WARN_SECS - 1);
        f.certificates[0].1 = f.now + (CERTIFICATE_WARN_DAYS - 1) * DAY + 10;
        f.backlog = BACKLOG_WARN;
        assert_eq!(codes(&f), ["globalconf_expiring", "certificate_expiring", "timestamping_backlog"]);
        let expiring = &alerts(&f)[1];
        assert_eq!(expiring.values["days"], CERTIFICATE_WARN_DAYS - 1);

        f.globalconf_problem = Some("expired".into());
        f.certificates.push(("C=DEMO, O=1001, CN=ss1".into(), f.now, Some("no OCSP response yet".into())));
        f.timestamping_problem = Some("no TSA answers".into());
        f.registered = false;
        let all = alerts(&f);
        let levels: Vec<Level> = all.iter().map(|a| a.level).collect();
        assert_eq!(levels.iter().filter(|l| **l == Level::Error).count(), 4, "{all:?}");
        assert!(levels.windows(2).all(|w| !(w[0] == Level::Warning && w[1] == Level::Error)), "{all:?}");
        assert_eq!(
            codes(&f),
            [
                "globalconf_invalid",
                "certificate_expired",
                "ocsp_problem",
                "timestamping_failing",
                "not_registered",
                "certificate_expiring"
            ]
        );
    }

    #[test]
    fn just_outside_the_thresholds_is_quiet() {
        let mut f = healthy();
        f.globalconf_expires_at = Some(f.now + GLOBALCONF_WARN_SECS);
        f.certificates[0].1 = f.now + CERTIFICATE_WARN_DAYS * DAY;
        f.backlog = BACKLOG_WARN - 1;
        assert!(alerts(&f).is_empty(), "{:?}", alerts(&f));
    }
}
