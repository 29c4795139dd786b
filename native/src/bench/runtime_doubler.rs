//! The runtime's side of the bench: the built-in doubler driven through the public Rust API
//! exactly as a user would (`send_pod`/`receive_pod`, `call_pod`, `send_batch`/`receive_batch`),
//! and fleets of doubler copies under ids of their own for the many-kernels tick.

use std::time::Duration;

use anyhow::Context;
use futures_util::future::try_join_all;
use ringkernel_web::kernel;
use ringkernel_web::{BackendChoice, Error, LaunchOptions, Runtime, RuntimeOptions};

/// The id of the built-in doubler each bench runtime launches.
pub const DOUBLER: &str = "doubler";

/// Long enough for a million messages on a software adapter, short enough that a stuck
/// runtime fails the bench instead of hanging it.
pub const TIMEOUT: Option<Duration> = Some(Duration::from_secs(120));

/// Queue size of each fleet kernel: a tick sends one message to each.
const FLEET_QUEUE_SIZE: usize = 16;

/// A runtime on `backend` with the doubler launched and active, its queues `queue_size` deep.
pub async fn open(backend: BackendChoice, queue_size: usize) -> ringkernel_web::Result<Runtime> {
    let runtime = Runtime::new(RuntimeOptions::default().with_backend(backend)).await?;
    runtime.launch(DOUBLER, LaunchOptions::default().with_queue_capacity(queue_size)).await?;
    runtime.activate(DOUBLER).await?;
    Ok(runtime)
}

/// One message in, its answer out: `send` then `receive`.
pub async fn send_receive(runtime: &Runtime, value: i32) -> anyhow::Result<Vec<i32>> {
    send_receive_to(runtime, DOUBLER, value).await
}

/// The same through kernel `id`, which takes and answers an `i32`.
pub async fn send_receive_to(runtime: &Runtime, id: &str, value: i32) -> anyhow::Result<Vec<i32>> {
    runtime.send_pod(id, &value, TIMEOUT).await?;
    Ok(vec![runtime.receive_pod(id, TIMEOUT).await?])
}

/// One message in, its answer out, matched by correlation id.
pub async fn call(runtime: &Runtime, value: i32) -> anyhow::Result<Vec<i32>> {
    Ok(vec![runtime.call_pod(DOUBLER, &value, TIMEOUT).await?])
}

/// Workgroups of the runtime's dispatch over `messages` messages, as its telemetry reports them
/// (`last_workgroups`) after one batch of that size: the grid the raw doubler on the runtime's
/// grid then uses.
pub async fn grid(runtime: &Runtime, messages: usize) -> anyhow::Result<u32> {
    let values: Vec<i32> = (0..messages as i32).collect();
    let answers = batch(runtime, &values).await?;
    anyhow::ensure!(answers.iter().zip(&values).all(|(a, v)| *a == v * 2), "the runtime's grid: wrong answers");
    let telemetry = runtime.telemetry(DOUBLER)?.context("the bench's runtime keeps telemetry")?;
    anyhow::ensure!(telemetry.last_workgroups >= 1, "the runtime reported no grid for {messages} messages");
    Ok(telemetry.last_workgroups)
}

/// A whole batch through the doubler. Sends what the queue takes, receives what has come back,
/// and repeats, so a batch larger than the queue streams through under backpressure; a batch
/// that fits goes out with one `send_batch` (one tick).
pub async fn batch(runtime: &Runtime, values: &[i32]) -> anyhow::Result<Vec<i32>> {
    let mut answers = Vec::new();
    let mut sent = 0;
    while answers.len() < values.len() {
        if sent < values.len() {
            // A zero timeout takes what fits now instead of waiting on answers nobody reads yet;
            // when not all of it fits, the `QueueFull` says how many went in.
            sent += match runtime.send_batch(DOUBLER, &values[sent..], Some(Duration::ZERO)).await {
                Ok(all) => all,
                Err(cut) if matches!(cut.error, Error::QueueFull { .. }) => cut.accepted,
                Err(cut) => return Err(cut.error.into()),
            };
        }
        if answers.len() < sent {
            let more: Vec<i32> = runtime.receive_batch(DOUBLER, sent - answers.len(), TIMEOUT).await?;
            // A batch that came back whole is the answer vector itself, as a user would keep it.
            if answers.is_empty() {
                answers = more;
            } else {
                answers.extend(more);
            }
        }
    }
    Ok(answers)
}

/// Copies of the doubler under ids `doubler-0`, `doubler-1`, ..., each with its own rings.
pub struct Fleet {
    ids: Vec<String>,
    active: usize,
}

impl Fleet {
    /// Launches `count` copies (compiled concurrently); none is active yet.
    pub async fn launch(runtime: &Runtime, count: usize) -> anyhow::Result<Fleet> {
        let doubler = kernel::lookup(DOUBLER).context("the built-in doubler is registered")?;
        let ids: Vec<String> = (0..count).map(|i| format!("{DOUBLER}-{i}")).collect();
        try_join_all(ids.iter().map(|id| {
            let definition = (*doubler).clone().with_id(id);
            runtime.launch_definition(definition, LaunchOptions::default().with_queue_capacity(FLEET_QUEUE_SIZE))
        }))
        .await?;
        Ok(Fleet { ids, active: 0 })
    }

    /// Activates copies until `count` are active.
    pub async fn activate(&mut self, runtime: &Runtime, count: usize) -> anyhow::Result<()> {
        for id in &self.ids[self.active..count] {
            runtime.activate(id).await?;
        }
        self.active = self.active.max(count);
        Ok(())
    }

    /// One round of traffic: `values[i]` to active copy i (as many copies as values), then
    /// their answers back.
    pub async fn tick(&self, runtime: &Runtime, values: &[i32]) -> anyhow::Result<Vec<i32>> {
        anyhow::ensure!(values.len() <= self.active, "{} values for {} active copies", values.len(), self.active);
        let ids = &self.ids[..values.len()];
        for (id, value) in ids.iter().zip(values) {
            runtime.send_pod(id, value, TIMEOUT).await?;
        }
        let mut answers = Vec::with_capacity(ids.len());
        for id in ids {
            answers.push(runtime.receive_pod(id, TIMEOUT).await?);
        }
        Ok(answers)
    }

    /// Ticks the active copies ran grouped, summed over them.
    pub fn grouped_dispatches(&self, runtime: &Runtime) -> u64 {
        self.ids[..self.active]
            .iter()
            .filter_map(|id| runtime.telemetry(id).ok().flatten())
            .map(|t| t.grouped_dispatches)
            .sum()
    }

    pub fn active(&self) -> usize {
        self.active
    }

    pub async fn terminate(self, runtime: &Runtime) -> anyhow::Result<()> {
        for id in &self.ids {
            runtime.terminate(id, TIMEOUT).await?;
            runtime.remove(id)?;
        }
        Ok(())
    }
}

/// Four doubler copies in a row: connected (`stage-0` → ... → `stage-3`, answers copied ring to
/// ring on the GPU) and unconnected (`hop-0` ... `hop-3`, the host relays each answer).
pub struct Pipelines {
    stages: Vec<String>,
    unfused: Vec<String>,
    paused: Vec<String>,
    hops: Vec<String>,
}

/// Stages in each pipeline; a message comes out multiplied by 2^STAGES.
pub const STAGES: usize = 4;

impl Pipelines {
    /// Four pipelines of doublers: connected and fused (waited for until a tick ran it fused, as
    /// its module compiles in the background), connected but launched `unfused` (ring to ring),
    /// connected for pausing its middle stage, and unconnected stages for host relays.
    pub async fn launch(runtime: &Runtime) -> anyhow::Result<Pipelines> {
        let doubler = kernel::lookup(DOUBLER).context("the built-in doubler is registered")?;
        let ids = |prefix: &str| (0..STAGES).map(|i| format!("{prefix}-{i}")).collect::<Vec<_>>();
        let (stages, unfused, paused, hops) = (ids("stage"), ids("unfused"), ids("paused"), ids("hop"));
        for id in stages.iter().chain(&unfused).chain(&paused).chain(&hops) {
            let definition = (*doubler).clone().with_id(id);
            let mut options = LaunchOptions::default().with_queue_capacity(64);
            if unfused.contains(id) {
                options = options.unfused();
            }
            runtime.launch_definition(definition, options).await?;
            runtime.activate(id).await?;
        }
        for chain in [&stages, &unfused, &paused] {
            for pair in chain.windows(2) {
                runtime.connect(&pair[0], &pair[1]).await?;
            }
        }
        let pipelines = Pipelines { stages, unfused, paused, hops };
        let fused = || runtime.telemetry(&pipelines.stages[0]).ok().flatten().map_or(0, |t| t.fused_dispatches);
        for _ in 0..5000 {
            if fused() > 0 {
                break;
            }
            pipelines.connected(runtime, 1).await?;
        }
        anyhow::ensure!(fused() > 0, "the connected pipeline never ran fused");
        Ok(pipelines)
    }

    /// One message through the pipeline whose stages run unfused, ring to ring.
    pub async fn unfused(&self, runtime: &Runtime, value: i32) -> anyhow::Result<Vec<i32>> {
        runtime.send_pod(&self.unfused[0], &value, TIMEOUT).await?;
        Ok(vec![runtime.receive_pod(&self.unfused[STAGES - 1], TIMEOUT).await?])
    }

    /// One message sent into the pipeline while its middle stage is paused, which is then
    /// resumed: the answer arrives once the stage runs again (the fallback path, and the control
    /// calls around it).
    pub async fn paused_middle(&self, runtime: &Runtime, value: i32) -> anyhow::Result<Vec<i32>> {
        let middle = &self.paused[STAGES / 2];
        runtime.deactivate(middle).await?;
        runtime.send_pod(&self.paused[0], &value, TIMEOUT).await?;
        runtime.reactivate(middle).await?;
        Ok(vec![runtime.receive_pod(&self.paused[STAGES - 1], TIMEOUT).await?])
    }

    /// One message through the connected pipeline: sent to the first stage, received from the last.
    pub async fn connected(&self, runtime: &Runtime, value: i32) -> anyhow::Result<Vec<i32>> {
        runtime.send_pod(&self.stages[0], &value, TIMEOUT).await?;
        Ok(vec![runtime.receive_pod(&self.stages[STAGES - 1], TIMEOUT).await?])
    }

    /// The same four doublings with a host round trip each.
    pub async fn host_relayed(&self, runtime: &Runtime, value: i32) -> anyhow::Result<Vec<i32>> {
        let mut value = value;
        for hop in &self.hops {
            runtime.send_pod(hop, &value, TIMEOUT).await?;
            value = runtime.receive_pod(hop, TIMEOUT).await?;
        }
        Ok(vec![value])
    }

    pub async fn terminate(self, runtime: &Runtime) -> anyhow::Result<()> {
        for id in self.stages.iter().chain(&self.unfused).chain(&self.paused).chain(&self.hops) {
            runtime.terminate(id, TIMEOUT).await?;
            runtime.remove(id)?;
        }
        Ok(())
    }
}
