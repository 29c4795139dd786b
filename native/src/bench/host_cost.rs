//! The host's own cost of one message on the named-values path (the JavaScript layer's when no
//! codec serves a layout; its objects go through the packed codecs otherwise): `send` of `[("value", n)]` and `receive` into named values, one message per call. A
//! copy of the doubler whose queues hold a whole round is deactivated while the sends run, and
//! every answer is back before the receives run, so no GPU time is in either figure (as the
//! browser benchmark's `hostCost` does). The same with envelopes (`send_envelope`,
//! `receive_envelope`), whose headers ride beside the messages on the host.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use ringkernel_web::{LaunchOptions, MessageEnvelope, Runtime, Value};
use serde::Serialize;

use super::runtime_doubler::DOUBLER;

/// What one single-message `send` and one `receive` cost the host, in nanoseconds per message
/// (the median over rounds of `messages` calls each).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HostCost {
    pub messages: usize,
    pub rounds: usize,
    pub send_ns: f64,
    pub receive_ns: f64,
    /// The same with `send_envelope` and `receive_envelope`.
    pub send_envelope_ns: f64,
    pub receive_envelope_ns: f64,
}

/// The doubler copy measured, launched for the measurement and removed after it.
const KERNEL: &str = "host-cost";

/// Measures [`HostCost`] on a copy of the doubler, `rounds` rounds of `messages` each.
pub async fn measure(runtime: &Runtime, messages: usize, rounds: usize) -> anyhow::Result<HostCost> {
    runtime.launch_as(DOUBLER, KERNEL, LaunchOptions::default().with_queue_capacity(messages)).await?;
    runtime.activate(KERNEL).await?;
    let (mut sends, mut receives) = (Vec::new(), Vec::new());
    let (mut envelope_sends, mut envelope_receives) = (Vec::new(), Vec::new());
    for round in 0..2 * rounds {
        // Plain and enveloped rounds alternate.
        let enveloped = round % 2 == 1;
        let base = (round * messages) as i32;
        runtime.deactivate(KERNEL).await?;
        let start = Instant::now();
        for i in 0..messages as i32 {
            let fields = [("value", Value::from(base + i))];
            if enveloped {
                let message = Value::Struct(vec![("value".into(), Value::from(base + i))]);
                runtime.send_envelope(KERNEL, &MessageEnvelope::new(message), None).await?;
            } else {
                runtime.send(KERNEL, &fields, None).await?;
            }
        }
        (if enveloped { &mut envelope_sends } else { &mut sends }).push(per_message(start.elapsed(), messages));
        runtime.reactivate(KERNEL).await?;
        wait_for_answers(runtime, messages).await?;
        let start = Instant::now();
        let mut answers = Vec::with_capacity(messages);
        for _ in 0..messages {
            answers.push(match enveloped {
                true => runtime.receive_envelope(KERNEL, Some(Duration::ZERO)).await?.message,
                false => runtime.receive(KERNEL, Some(Duration::ZERO)).await?,
            });
        }
        (if enveloped { &mut envelope_receives } else { &mut receives }).push(per_message(start.elapsed(), messages));
        for (i, answer) in answers.iter().enumerate() {
            let expected = Value::I32(2 * (base + i as i32));
            if answer.first().map(|(_, v)| v) != Some(&expected) {
                bail!("host cost: answer {i} of round {round} is {answer:?}, expected {expected:?}");
            }
        }
    }
    runtime.terminate(KERNEL, None).await?;
    runtime.remove(KERNEL)?;
    Ok(HostCost {
        messages,
        rounds,
        send_ns: median(sends),
        receive_ns: median(receives),
        send_envelope_ns: median(envelope_sends),
        receive_envelope_ns: median(envelope_receives),
    })
}

/// Waits until `count` answers wait in the measured kernel's output queue.
async fn wait_for_answers(runtime: &Runtime, count: usize) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let telemetry = runtime.telemetry(KERNEL)?.context("the bench runtime keeps telemetry")?;
        if telemetry.output_queue_depth >= count {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("host cost: only {} of {count} answers arrived", telemetry.output_queue_depth);
        }
        // The tick runs on its own thread natively: sleeping here holds nothing up.
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn per_message(elapsed: Duration, messages: usize) -> f64 {
    elapsed.as_nanos() as f64 / messages as f64
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}
