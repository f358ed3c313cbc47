//! Pacing of the frames sent to one device (sans-IO; the caller passes the
//! time): one outstanding request at a time, a minimum gap between frames
//! (guideline §2.7: slow devices drop back-to-back requests), retries with
//! doubling back-off, a cap on retries after Get_SNA (§6.8), and a budget of
//! frames per sliding minute that retries and liveness probes count against
//! (§6.11: some meters go silent for ten minutes after 60 frames in a minute).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The most frames any configuration may send to one device per minute.
pub const HARD_FRAMES_PER_MINUTE: usize = 50;
const MINUTE: Duration = Duration::from_secs(60);

/// How frames to one device are paced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacingConfig {
    /// Least time between two frames to the device.
    pub min_gap: Duration,
    /// How long a request waits for its answer before it counts as lost.
    pub response_timeout: Duration,
    /// Resends of a lost request before giving up.
    pub max_retries: u32,
    /// Wait before the first resend; each further one waits twice as long.
    pub retry_backoff: Duration,
    /// Frames per sliding minute, retries and probes included (at most
    /// [`HARD_FRAMES_PER_MINUTE`], well under the 60 that silence some meters).
    pub frames_per_minute: usize,
    /// Resends after a Get_SNA (the device said no; asking again rarely helps).
    pub max_retries_after_sna: u32,
}

impl Default for PacingConfig {
    fn default() -> Self {
        Self {
            min_gap: Duration::from_millis(300),
            response_timeout: Duration::from_secs(2),
            max_retries: 3,
            retry_backoff: Duration::from_secs(1),
            frames_per_minute: 40,
            max_retries_after_sna: 1,
        }
    }
}

/// What the caller may do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// A frame may go out now.
    Send,
    /// Nothing may go out before this time.
    Wait(Instant),
}

/// What to do about a request that got no answer in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lost {
    /// Resend it, not before this time.
    Resend(Instant),
    /// Give up: the retries are spent.
    GiveUp,
}

#[derive(Debug, Clone, Copy)]
struct Pending {
    tid: u16,
    sent_at: Instant,
    resends: u32,
    sna_resends: u32,
}

/// The pacing state of one device.
#[derive(Debug, Clone)]
pub struct Pacer {
    conf: PacingConfig,
    pending: Option<Pending>,
    not_before: Option<Instant>,
    sent: VecDeque<Instant>,
}

impl Pacer {
    /// A pacer; the frame budget is capped at [`HARD_FRAMES_PER_MINUTE`].
    pub fn new(mut conf: PacingConfig) -> Self {
        conf.frames_per_minute = conf.frames_per_minute.clamp(1, HARD_FRAMES_PER_MINUTE);
        Self { conf, pending: None, not_before: None, sent: VecDeque::new() }
    }

    /// When the next frame (a new request, a resend or a probe) may go out.
    pub fn next(&mut self, now: Instant) -> Next {
        while self.sent.front().is_some_and(|t| now.duration_since(*t) >= MINUTE) {
            self.sent.pop_front();
        }
        let mut earliest = now;
        if let Some(p) = self.pending {
            earliest = earliest.max(p.sent_at + self.conf.response_timeout);
        }
        if let Some(t) = self.not_before {
            earliest = earliest.max(t);
        }
        if let Some(last) = self.sent.back() {
            earliest = earliest.max(*last + self.conf.min_gap);
        }
        if self.sent.len() >= self.conf.frames_per_minute {
            earliest = earliest.max(self.sent[self.sent.len() - self.conf.frames_per_minute] + MINUTE);
        }
        if earliest <= now { Next::Send } else { Next::Wait(earliest) }
    }

    /// Records a request sent now with `tid` (`resend`: the pending one again).
    pub fn sent(&mut self, now: Instant, tid: u16, resend: bool) {
        self.sent.push_back(now);
        self.not_before = None;
        let (resends, sna_resends) = match (resend, self.pending) {
            (true, Some(p)) => (p.resends + 1, p.sna_resends),
            _ => (0, 0),
        };
        self.pending = Some(Pending { tid, sent_at: now, resends, sna_resends });
    }

    /// Records a frame sent that expects no answer (SetI, INF, a reply).
    pub fn sent_unanswered(&mut self, now: Instant) {
        self.sent.push_back(now);
    }

    /// An answer with `tid` arrived; true when it answers the pending request.
    pub fn answered(&mut self, tid: u16) -> bool {
        if self.pending.is_some_and(|p| p.tid == tid) {
            self.pending = None;
            true
        } else {
            false
        }
    }

    /// The pending request got no answer by `now`.
    pub fn lost(&mut self, now: Instant) -> Lost {
        let Some(p) = self.pending else { return Lost::GiveUp };
        if p.resends >= self.conf.max_retries {
            self.pending = None;
            return Lost::GiveUp;
        }
        let at = now + self.conf.retry_backoff * 2u32.saturating_pow(p.resends);
        self.not_before = Some(at);
        self.pending = Some(Pending { sent_at: now.checked_sub(self.conf.response_timeout).unwrap_or(now), ..p });
        Lost::Resend(at)
    }

    /// The pending request was refused (Get_SNA); true when one more try is allowed.
    pub fn refused(&mut self, tid: u16) -> bool {
        let Some(p) = self.pending.filter(|p| p.tid == tid) else { return false };
        if p.sna_resends >= self.conf.max_retries_after_sna {
            self.pending = None;
            return false;
        }
        self.pending = Some(Pending { sna_resends: p.sna_resends + 1, resends: p.resends.saturating_sub(1), ..p });
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn one_request_at_a_time_with_a_gap_between_frames() {
        let t0 = Instant::now();
        let mut p = Pacer::new(PacingConfig::default());
        assert_eq!(p.next(t0), Next::Send);
        p.sent(t0, 1, false);
        // Unanswered: nothing else goes out until it times out.
        assert_eq!(p.next(t0 + ms(100)), Next::Wait(t0 + ms(2000)));
        // Answered quickly: the next frame still waits for the gap.
        assert!(p.answered(1));
        assert!(!p.answered(1), "an answer is taken once");
        assert_eq!(p.next(t0 + ms(100)), Next::Wait(t0 + ms(300)));
        assert_eq!(p.next(t0 + ms(300)), Next::Send);
        // An answer with another TID does not release the device.
        p.sent(t0 + ms(300), 2, false);
        assert!(!p.answered(7));
        assert_eq!(p.next(t0 + ms(900)), Next::Wait(t0 + ms(2300)));
    }

    #[test]
    fn lost_requests_are_resent_with_doubling_back_off_then_given_up() {
        let t0 = Instant::now();
        let mut p = Pacer::new(PacingConfig::default());
        p.sent(t0, 9, false);
        let mut now = t0 + ms(2000);
        let mut waits = Vec::new();
        while let Lost::Resend(at) = p.lost(now) {
            waits.push(at - now);
            assert_eq!(p.next(now), Next::Wait(at));
            now = at;
            assert_eq!(p.next(now), Next::Send);
            p.sent(now, 9, true);
            now += ms(2000);
        }
        assert_eq!(waits, [ms(1000), ms(2000), ms(4000)]);
        assert_eq!(p.next(now), Next::Send, "given up: the device is free again");
    }

    #[test]
    fn refusals_are_retried_only_up_to_the_cap() {
        let t0 = Instant::now();
        let mut p = Pacer::new(PacingConfig::default());
        p.sent(t0, 3, false);
        assert!(p.refused(3), "one more try after Get_SNA");
        p.sent(t0 + ms(300), 3, true);
        assert!(!p.refused(3), "then no more");
        assert!(!p.refused(4), "a refusal of another TID is ignored");
        assert_eq!(p.next(t0 + ms(600)), Next::Send);
    }

    #[test]
    fn no_minute_ever_holds_more_frames_than_the_budget_whatever_the_caller_asks() {
        for conf in [
            PacingConfig::default(),
            PacingConfig { min_gap: Duration::ZERO, frames_per_minute: 500, ..PacingConfig::default() },
        ] {
            let t0 = Instant::now();
            let mut p = Pacer::new(conf);
            let mut sent = Vec::new();
            let mut now = t0;
            let mut tid = 0u16;
            // A greedy caller for ten simulated minutes: requests answered at
            // once, and every fourth one lost and resent.
            while now < t0 + Duration::from_secs(600) {
                match p.next(now) {
                    Next::Wait(t) => now = t,
                    Next::Send => {
                        tid = tid.wrapping_add(1);
                        p.sent(now, tid, false);
                        sent.push(now);
                        if tid.is_multiple_of(4) {
                            now += ms(2000);
                            if let Lost::Resend(at) = p.lost(now) {
                                now = now.max(at);
                                if let Next::Wait(t) = p.next(now) {
                                    now = t;
                                }
                                p.sent(now, tid, true);
                                sent.push(now);
                            }
                        }
                        p.answered(tid);
                    }
                }
            }
            let budget = conf.frames_per_minute.min(HARD_FRAMES_PER_MINUTE);
            for (i, start) in sent.iter().enumerate() {
                let in_minute = sent[i..].iter().take_while(|t| t.duration_since(*start) < MINUTE).count();
                assert!(in_minute <= budget, "{in_minute} frames in a minute, budget {budget}");
            }
            assert!(sent.len() >= budget * 9, "the budget is used, not wasted: {} frames", sent.len());
        }
    }
}
