// Options and builders are values: each `with_*` returns the changed one and leaves its receiver
// as it was, so a call whose result is dropped changed nothing, and the compiler says so.
#![deny(unused_must_use)]
use std::time::Duration;

use ringkernel_web::{CircuitBreakerConfig, LaunchOptions, MessageEnvelope, RuntimeBuilder, RuntimeOptions};

fn main() {
    let options = LaunchOptions::default();
    options.clone().with_auto_activate();
    RuntimeOptions::default().with_auto_recover(true);
    RuntimeBuilder::production().auto_recover(false);
    CircuitBreakerConfig::default().with_open_duration(Duration::from_secs(1));
    MessageEnvelope::new(21).with_priority(2);
    let _ = options;
}
