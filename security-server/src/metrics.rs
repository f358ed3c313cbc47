//! What the server counts, and its Prometheus text (served on the admin API
//! at `/metrics`): exchanges by side and outcome, faults by code, exchange
//! latency, the time-stamping backlog, the age of each own certificate's
//! OCSP response and the time left before the global configuration expires.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the latency histogram, seconds.
const BUCKETS: [f64; 11] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// Which proxy handled an exchange.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Side {
    /// Requests from information systems.
    Client,
    /// Requests from peer security servers.
    Server,
}

#[derive(Debug, Default)]
struct Histogram {
    counts: [AtomicU64; BUCKETS.len()],
    total: AtomicU64,
    sum_micros: AtomicU64,
}

/// Counters of a running server.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    ok: [AtomicU64; 2],
    faults: Mutex<BTreeMap<(usize, String), u64>>,
    latency: [Histogram; 2],
    recent: Mutex<Recent>,
}

/// Exchanges and faults per minute over the last hour, for the dashboard.
#[derive(Debug, Default)]
struct Recent {
    /// (minute since the epoch, exchanges without a fault, faults by code), oldest first.
    minutes: std::collections::VecDeque<(u64, u64, BTreeMap<String, u64>)>,
}

/// What happened in the last hour.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub(crate) struct LastHour {
    /// Exchanges completed without a fault (both proxies).
    pub(crate) exchanges: u64,
    /// Requests answered with a fault.
    pub(crate) faults: u64,
    /// Faults by code.
    pub(crate) faults_by_code: BTreeMap<String, u64>,
}

impl Recent {
    fn add(&mut self, minute: u64, fault: Option<&str>) {
        if self.minutes.back().is_none_or(|(m, ..)| *m != minute) {
            self.minutes.push_back((minute, 0, BTreeMap::new()));
        }
        while self.minutes.front().is_some_and(|(m, ..)| *m + 60 <= minute) {
            self.minutes.pop_front();
        }
        if let Some((_, ok, faults)) = self.minutes.back_mut() {
            match fault {
                None => *ok += 1,
                Some(code) => *faults.entry(code.to_string()).or_default() += 1,
            }
        }
    }

    fn last_hour(&self, minute: u64) -> LastHour {
        let mut out = LastHour::default();
        for (_, ok, faults) in self.minutes.iter().filter(|(m, ..)| *m + 60 > minute) {
            out.exchanges += ok;
            for (code, n) in faults {
                out.faults += n;
                *out.faults_by_code.entry(code.clone()).or_default() += n;
            }
        }
        out
    }
}

fn this_minute() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() / 60)
}

impl Metrics {
    /// Records one exchange: its duration and the fault code, if it failed.
    pub(crate) fn record(&self, side: Side, took: Duration, fault: Option<&str>) {
        let i = side as usize;
        match fault {
            None => {
                self.ok[i].fetch_add(1, Ordering::Relaxed);
            }
            Some(code) => {
                *self.faults.lock().unwrap_or_else(|p| p.into_inner()).entry((i, code.to_string())).or_default() += 1;
            }
        }
        self.recent.lock().unwrap_or_else(|p| p.into_inner()).add(this_minute(), fault);
        let h = &self.latency[i];
        let secs = took.as_secs_f64();
        for (b, c) in BUCKETS.iter().zip(&h.counts) {
            if secs <= *b {
                c.fetch_add(1, Ordering::Relaxed);
            }
        }
        h.total.fetch_add(1, Ordering::Relaxed);
        h.sum_micros.fetch_add(u64::try_from(took.as_micros()).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// Exchanges and faults of the last hour.
    pub(crate) fn last_hour(&self) -> LastHour {
        self.recent.lock().unwrap_or_else(|p| p.into_inner()).last_hour(this_minute())
    }

    /// The Prometheus text exposition of the counters plus the gauges given.
    pub(crate) fn render(&self, gauges: &Gauges) -> String {
        let sides = ["client", "server"];
        let mut s = String::new();
        s.push_str("# HELP musubi_exchanges_total Exchanges completed without a fault.\n# TYPE musubi_exchanges_total counter\n");
        for (i, side) in sides.iter().enumerate() {
            let _ = writeln!(s, "musubi_exchanges_total{{proxy=\"{side}\"}} {}", self.ok[i].load(Ordering::Relaxed));
        }
        s.push_str("# HELP musubi_faults_total Requests answered with an X-Road fault, by code.\n# TYPE musubi_faults_total counter\n");
        for ((i, code), n) in self.faults.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            let code = code.replace(['\\', '"', '\n'], "_");
            let _ = writeln!(s, "musubi_faults_total{{proxy=\"{}\",code=\"{code}\"}} {n}", sides[*i]);
        }
        s.push_str(
            "# HELP musubi_exchange_seconds Time from request to answer.\n# TYPE musubi_exchange_seconds histogram\n",
        );
        for (i, side) in sides.iter().enumerate() {
            let h = &self.latency[i];
            for (b, c) in BUCKETS.iter().zip(&h.counts) {
                let _ = writeln!(
                    s,
                    "musubi_exchange_seconds_bucket{{proxy=\"{side}\",le=\"{b}\"}} {}",
                    c.load(Ordering::Relaxed)
                );
            }
            let total = h.total.load(Ordering::Relaxed);
            let _ = writeln!(s, "musubi_exchange_seconds_bucket{{proxy=\"{side}\",le=\"+Inf\"}} {total}");
            let sum = h.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
            let _ = writeln!(s, "musubi_exchange_seconds_sum{{proxy=\"{side}\"}} {sum}");
            let _ = writeln!(s, "musubi_exchange_seconds_count{{proxy=\"{side}\"}} {total}");
        }
        s.push_str("# HELP musubi_timestamp_backlog Logged records waiting for a time stamp.\n# TYPE musubi_timestamp_backlog gauge\n");
        let _ = writeln!(s, "musubi_timestamp_backlog {}", gauges.backlog);
        s.push_str("# HELP musubi_ocsp_response_age_seconds Age of the OCSP response for each own certificate.\n# TYPE musubi_ocsp_response_age_seconds gauge\n");
        for (cert, age) in &gauges.ocsp_ages {
            let _ = writeln!(s, "musubi_ocsp_response_age_seconds{{certificate=\"{cert}\"}} {age}");
        }
        if let Some(left) = gauges.globalconf_expires_in {
            s.push_str("# HELP musubi_globalconf_expires_in_seconds Time until the global configuration in force expires.\n# TYPE musubi_globalconf_expires_in_seconds gauge\n");
            let _ = writeln!(s, "musubi_globalconf_expires_in_seconds {left}");
        }
        s
    }
}

/// Values read at scrape time.
#[derive(Debug, Default)]
pub(crate) struct Gauges {
    /// Records without a time stamp.
    pub(crate) backlog: i64,
    /// (certificate SHA-1, seconds since `thisUpdate`) of each own certificate.
    pub(crate) ocsp_ages: Vec<(String, i64)>,
    /// Seconds until the global configuration expires (negative: expired).
    pub(crate) globalconf_expires_in: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_hour_forgets_older_minutes() {
        let mut r = Recent::default();
        r.add(1000, None);
        r.add(1000, Some("server.serverproxy.access_denied"));
        r.add(1030, None);
        r.add(1059, Some("server.serverproxy.access_denied"));
        let hour = r.last_hour(1059);
        assert_eq!((hour.exchanges, hour.faults), (2, 2));
        assert_eq!(hour.faults_by_code["server.serverproxy.access_denied"], 2);
        let later = r.last_hour(1060);
        assert_eq!((later.exchanges, later.faults), (1, 1), "minute 1000 is over an hour old");
        r.add(1100, None);
        assert_eq!(r.minutes.len(), 2, "old minutes are dropped as new ones come: {:?}", r.minutes);
    }

    #[test]
    fn renders_counters_histogram_and_gauges() {
        let m = Metrics::default();
        m.record(Side::Client, Duration::from_millis(30), None);
        m.record(Side::Client, Duration::from_millis(3), Some("server.clientproxy.outdated_globalconf"));
        m.record(Side::Server, Duration::from_secs(20), None);
        let text =
            m.render(&Gauges { backlog: 4, ocsp_ages: vec![("ab12".into(), 60)], globalconf_expires_in: Some(540) });
        assert!(text.contains("musubi_exchanges_total{proxy=\"client\"} 1"), "{text}");
        assert!(
            text.contains("musubi_faults_total{proxy=\"client\",code=\"server.clientproxy.outdated_globalconf\"} 1")
        );
        assert!(text.contains("musubi_exchange_seconds_bucket{proxy=\"client\",le=\"0.05\"} 2"), "{text}");
        assert!(text.contains("musubi_exchange_seconds_bucket{proxy=\"client\",le=\"0.01\"} 1"), "{text}");
        assert!(text.contains("musubi_exchange_seconds_bucket{proxy=\"server\",le=\"10\"} 0"), "{text}");
        assert!(text.contains("musubi_exchange_seconds_count{proxy=\"server\"} 1"), "{text}");
        assert!(
            text.contains("musubi_timestamp_backlog 4") && text.contains("musubi_globalconf_expires_in_seconds 540")
        );
        assert!(text.contains("musubi_ocsp_response_age_seconds{certificate=\"ab12\"} 60"));
    }
}
