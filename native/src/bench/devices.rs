//! Several devices: the pause a live migration causes while messages flow (the kernel is out of
//! every tick for that long; compiling on the target comes before), and one message through a
//! 3-stage connected doubler pipeline whose middle stage sits on another device (answers
//! relayed through the host) against the same pipeline on one device (ring to ring on the GPU).
//! Both devices are opened on the bench's adapter.

use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use ringkernel_web::{BackendChoice, DeviceId, DeviceSpec, LaunchOptions, Runtime, RuntimeOptions};
use serde::Serialize;

use super::stats::Latency;

const TIMEOUT: Option<Duration> = Some(Duration::from_secs(120));
/// Messages sent before each migration, so each one moves a kernel with work queued and in flight.
const MESSAGES_PER_MOVE: usize = 500;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Devices {
    pub migrations: usize,
    /// How long the kernel was out of every tick, per migration.
    pub pause: Latency,
    /// The whole `migrate` call, compiling on the target included.
    pub migrate: Latency,
    /// One message through 3 connected stages, the middle one on the other device.
    pub pipeline_across_devices: Latency,
    /// The same pipeline on one device.
    pub pipeline_one_device: Latency,
}

pub async fn measure(backend: BackendChoice, migrations: usize, iterations: usize) -> anyhow::Result<Devices> {
    let options = RuntimeOptions::default().with_devices([DeviceSpec::new(backend), DeviceSpec::new(backend)]);
    let runtime = Runtime::new(options).await.context("opening two devices")?;
    let on = |device: u32| LaunchOptions::default().with_queue_capacity(4096).on_device(DeviceId(device));
    runtime.launch_as("doubler", "moving", on(0).with_auto_activate()).await?;
    let (mut pauses, mut calls) = (Vec::new(), Vec::new());
    for round in 0..migrations {
        let values: Vec<i32> = (0..MESSAGES_PER_MOVE as i32).map(|v| v + round as i32).collect();
        runtime.send_batch("moving", &values, TIMEOUT).await?;
        let started = Instant::now();
        let report = runtime.migrate("moving", DeviceId((round % 2 == 0) as u32)).await?;
        calls.push(started.elapsed());
        pauses.push(report.pause);
        let mut answers: Vec<i32> = Vec::new();
        while answers.len() < values.len() {
            answers.extend(runtime.receive_batch::<i32>("moving", values.len() - answers.len(), TIMEOUT).await?);
        }
        ensure!(answers == values.iter().map(|v| v * 2).collect::<Vec<_>>(), "migration lost or reordered answers");
    }
    let across = pipeline_latency(&runtime, "across", [0, 1, 0], iterations).await?;
    let one = pipeline_latency(&runtime, "one", [0, 0, 0], iterations).await?;
    runtime.dispose().await?;
    Ok(Devices {
        migrations,
        pause: Latency::from_samples(&pauses),
        migrate: Latency::from_samples(&calls),
        pipeline_across_devices: across,
        pipeline_one_device: one,
    })
}

/// Round trips of one message through three connected doublers placed on `devices`.
async fn pipeline_latency(
    runtime: &Runtime,
    prefix: &str,
    devices: [u32; 3],
    iterations: usize,
) -> anyhow::Result<Latency> {
    let ids: Vec<String> = (0..3).map(|i| format!("{prefix}-{i}")).collect();
    for (id, device) in ids.iter().zip(devices) {
        let options = LaunchOptions::default().on_device(DeviceId(device)).with_auto_activate();
        runtime.launch_as("doubler", id, options).await?;
    }
    runtime.connect(&ids[0], &ids[1]).await?;
    runtime.connect(&ids[1], &ids[2]).await?;
    let mut samples = Vec::with_capacity(iterations);
    for i in 0..iterations + 10 {
        let value = (i % 1000) as i32;
        let started = Instant::now();
        runtime.send_pod(&ids[0], &value, TIMEOUT).await?;
        let answer: i32 = runtime.receive_pod(&ids[2], TIMEOUT).await?;
        if i >= 10 {
            samples.push(started.elapsed());
        }
        ensure!(answer == value * 8, "pipeline answered {answer} to {value}");
    }
    runtime.terminate_all(TIMEOUT).await?;
    Ok(Latency::from_samples(&samples))
}
