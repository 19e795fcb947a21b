//! A gauge that counts something for as long as it lives: open
//! connections, logged-in sessions, sessions in IDLE.

/// Adds one to its gauge when made, takes it away when dropped (whatever
/// way the thing counted ends: a closed socket, an error, a panic).
pub struct Gauged(metrics::Gauge);

impl Gauged {
    pub fn new(gauge: metrics::Gauge) -> Gauged {
        gauge.increment(1.0);
        Gauged(gauge)
    }
}

impl Drop for Gauged {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}
